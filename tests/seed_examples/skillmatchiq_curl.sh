# SkillMatchIQ's curl examples. The seed page shows the upload as "[email protected]": a web page's
# e-mail obfuscation of `candidate_source_file=@resumes.zip`, restored here.
# BATCH_JOB_ID stands for the seed's literal "abc123-def456-ghi789": the test runs each command in turn.
# Submit batch job
curl -X POST https://yourdomain.com/api/v1/batch-jobs \
  -H "Authorization: Bearer YOUR_API_KEY" \
  -F "input_type=ZIP_FILE" \
  -F "job_description_text=Looking for a Senior Software Engineer with Python and React experience..." \
  -F "candidate_source_file=@resumes.zip"
# Check status
curl https://yourdomain.com/api/v1/batch-jobs/abc123-def456-ghi789/status \
  -H "Authorization: Bearer YOUR_API_KEY"
# Get results
curl https://yourdomain.com/api/v1/batch-jobs/abc123-def456-ghi789/results \
  -H "Authorization: Bearer YOUR_API_KEY"
