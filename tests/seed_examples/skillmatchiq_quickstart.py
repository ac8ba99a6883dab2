import requests
import time

# Your API configuration
API_KEY = "your_api_key_here"
API_BASE_URL = "https://yourdomain.com"  # Your actual domain

# Prepare your files
with open('resumes.zip', 'rb') as f:
    files = {'candidate_source_file': ('resumes.zip', f, 'application/zip')}
    data = {
        'input_type': 'ZIP_FILE',  # Correct enum value
        'job_description_text': 'Looking for a Senior Software Engineer with Python and React experience...'
    }
    headers = {'Authorization': f'Bearer {API_KEY}'}

    # Submit the batch job
    response = requests.post(
        f'{API_BASE_URL}/api/v1/batch-jobs',  # Correct endpoint
        data=data,
        files=files,
        headers=headers
    )

batch_job_id = response.json()['batch_job_id']  # Correct field name
print(f"Batch submitted: {batch_job_id}")

# Check status
while True:
    status = requests.get(
        f'{API_BASE_URL}/api/v1/batch-jobs/{batch_job_id}/status',  # Correct path
        headers=headers
    ).json()

    processed = status['processed_candidates']
    total = status['total_candidates']
    print(f"Progress: {processed}/{total} candidates")

    if status['status'] == 'completed':
        break
    elif status['status'] == 'failed':
        print(f"Batch failed: {status.get('error_message')}")
        break

    time.sleep(5)

# Get results
results = requests.get(
    f'{API_BASE_URL}/api/v1/batch-jobs/{batch_job_id}/results?skip=0&limit=10',  # Correct pagination
    headers=headers
).json()

# Show top matches
for item in results['processed_items'][:5]:  # Correct field name
    score = item['match_score']['overall_score']
    filename = item['original_filename']  # Correct field name
    print(f"Top match: {filename} - {score}%")
