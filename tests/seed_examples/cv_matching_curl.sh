# The CV Matching API's curl examples, as printed in its reference.
curl https://cv-matching-api.fly.dev/api/match \
-H "X-API-Key: sk_live_your_key_here" \
-F "cvs=@resume.pdf" \
-F "jd_text=Registered Nurse — ICU Department..."
# With a text JD
curl -X POST https://cv-matching-api.fly.dev/api/match \
-H "X-API-Key: sk_live_your_key_here" \
-F "cvs=@resume1.pdf" \
-F "cvs=@resume2.pdf" \
-F "jd_text=Warehouse Associate — Day shift, forklift certification preferred..."
# With a file JD
curl -X POST https://cv-matching-api.fly.dev/api/match \
-H "X-API-Key: sk_live_your_key_here" \
-F "cvs=@resume.pdf" \
-F "jd_file=@job_description.pdf"
curl https://cv-matching-api.fly.dev/api/match/550e8400-e29b-41d4-a716-446655440000/progress \
-H "X-API-Key: sk_live_your_key_here"
