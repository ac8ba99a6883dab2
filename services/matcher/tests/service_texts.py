"""Job descriptions and CVs the service tests write for themselves (realistic, no personal data)."""

JD = """Senior Backend Engineer

We build payment services for online shops.

Requirements
- 5+ years of experience building backend services
- Python, PostgreSQL, Docker, Kubernetes
- Bachelor's degree in Computer Science

Nice to have
- Terraform, AWS
"""

STRONG = """Alex Worker
Senior Backend Engineer

Experience
Senior Backend Engineer, Shipfast Payments
Jan 2017 - Dec 2024
- Built payment and order services in Python on PostgreSQL, packaged with Docker and deployed to Kubernetes
- Provisioned AWS infrastructure with Terraform and cut PostgreSQL query latency by half

Backend Developer, Loopworks
Mar 2014 - Dec 2016
- Wrote Python APIs backed by PostgreSQL

Education
BSc in Computer Science, University of Leeds
"""

MEDIUM = """Jamie Middle
Software Developer

Experience
Software Developer, Brightlane
Feb 2020 - Nov 2024
- Developed internal tools in Python with a MySQL database
- Wrote unit tests and maintained the CI pipeline with Jenkins

Education
BSc in Information Technology
"""

WEAK = """Morgan Baker
Pastry Chef

Experience
Pastry Chef, Le Petit Four
Jun 2015 - Aug 2024
- Prepared cakes, breads and desserts for a 120-seat restaurant
- Managed food safety records, ordering and a team of three bakers

Education
Diploma in Culinary Arts
"""

SPARSE = "Hello there"
