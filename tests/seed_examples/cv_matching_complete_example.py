import time
import requests

API_KEY = "sk_live_your_key_here"
BASE = "https://cv-matching-api.fly.dev"
headers = {"X-API-Key": API_KEY}

# 1. Submit match job
with open("alice.pdf", "rb") as f1, open("bob.pdf", "rb") as f2:
    resp = requests.post(
        f"{BASE}/api/match",
        headers=headers,
        files=[
            ("cvs", ("alice.pdf", f1, "application/pdf")),
            ("cvs", ("bob.pdf", f2, "application/pdf")),
        ],
        data={"jd_text": "Construction Project Manager — 5+ years commercial builds..."},
    )
job = resp.json()
job_id = job["job_id"]
print(f"Job created: {job_id}")

# 2. Poll until complete (timeout after ~4 min)
for _ in range(120):
    progress = requests.get(
        f"{BASE}/api/match/{job_id}/progress", headers=headers
    ).json()
    print(f" {progress['completed']}/{progress['total']} done")
    if progress["status"] == "completed":
        break
    if progress["status"] == "failed":
        raise RuntimeError("Job failed")
    time.sleep(2)

# 3. Get results
results = requests.get(
    f"{BASE}/api/match/{job_id}", headers=headers
).json()
for r in results["results"]:
    print(f"{r['cv_filename']}: {r['match_score']}/100 — {r['verdict']}")
