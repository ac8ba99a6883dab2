"""Compile the matcher's skills / occupations taxonomy from the open reference data.

Usage (from the repository root)::

    .venv/bin/python tools/build_taxonomy.py --data ../shared/data \
        --out services/matcher/src/cvmatch/matcher/data/taxonomy.json.gz

Sources (all CC BY 4.0 / CC BY-SA; see the NOTICE written next to the output):
ESCO v1.1.1 skills and occupations, O*NET 29.2 technology skills, titles and related occupations, and the
Stack Overflow tag list.  The output is deterministic: same inputs, byte-identical file (gzip mtime 0).

Noise control is the point of most of this file: a taxonomy label that fires on ordinary English ("guide",
"energy", "Word") costs more ranking quality than a missing rare skill, so labels are pruned by length,
generic-word lists and a "general English" vocabulary mined from O*NET task statements, and short words that
are also skills ("Go", "R", "Excel", "Swift") are flagged so the engine only accepts them in a skill context.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# The engine's title-word normalisation: rarity counts must use the words the engine compares.
from cvmatch.matcher.engine.occupations import WEIGHT_SCALE, profile_terms, term_weight
from cvmatch.matcher.engine.taxonomy import singular_title, surface_prefixes, title_words

FORMAT_VERSION = 2
MAX_SKILL_WORDS = 4
MAX_TITLE_WORDS = 5
MAX_LABEL_CHARS = 48
# A lowercase word seen this often in O*NET task statements / occupation descriptions is ordinary English.
GENERAL_WORD_MIN_COUNT = 4
SO_MIN_COUNT = 4000

# Occupation term profiles (the engine's work-history fit): how much each O*NET field counts per word, and
# how many of its strongest terms each occupation keeps.  The title says most; the 50-200 alternate titles
# add the many names of a trade; technology names are mostly shared office tools, so they count little.
# Terms are words and pairs of adjacent words (see profile_terms).  Tuned on the livecareer development set
# with tools/bench_ranking.py: 150 terms keep the index small (~140k postings) and ranked better than the
# full profiles, whose long tails of rare words make every CV look a little like everything.
PROFILE_FIELD_WEIGHTS = {"title": 5.0, "alt": 1.0, "description": 1.5, "task": 1.0, "tech": 0.2}
PROFILE_TERMS = 150

csv.field_size_limit(sys.maxsize)

SOC_MAJOR = {
    "11": "Management",
    "13": "Business and Financial Operations",
    "15": "Computer and Mathematical",
    "17": "Architecture and Engineering",
    "19": "Life, Physical, and Social Science",
    "21": "Community and Social Service",
    "23": "Legal",
    "25": "Educational Instruction and Library",
    "27": "Arts, Design, Entertainment, Sports, and Media",
    "29": "Healthcare Practitioners and Technical",
    "31": "Healthcare Support",
    "33": "Protective Service",
    "35": "Food Preparation and Serving",
    "37": "Building and Grounds Cleaning and Maintenance",
    "39": "Personal Care and Service",
    "41": "Sales and Related",
    "43": "Office and Administrative Support",
    "45": "Farming, Fishing, and Forestry",
    "47": "Construction and Extraction",
    "49": "Installation, Maintenance, and Repair",
    "51": "Production",
    "53": "Transportation and Material Moving",
    "55": "Military",
}

# ISCO-08 (sub-)major groups onto SOC major groups, longest prefix wins; coarse by nature.
ISCO_TO_SOC = {
    "0": "55", "11": "11", "12": "11", "13": "11", "14": "11", "21": "17", "211": "19", "212": "15",
    "213": "19", "22": "29", "23": "25", "24": "13", "243": "41", "25": "15", "26": "27", "261": "23",
    "262": "25", "263": "21", "31": "17", "311": "17", "313": "51", "314": "19", "315": "53", "32": "29",
    "33": "13", "332": "41", "334": "43", "34": "27", "341": "23", "342": "27", "343": "27", "35": "15",
    "4": "43", "51": "39", "512": "35", "513": "35", "515": "37", "52": "41", "53": "31", "54": "33",
    "6": "45", "71": "47", "72": "49", "73": "51", "74": "49", "75": "51", "751": "35", "8": "51",
    "83": "53", "91": "37", "92": "45", "93": "47", "933": "53", "94": "35", "95": "41", "96": "37",
}

VENDORS = [
    "Microsoft", "Oracle", "Apache", "Adobe", "IBM", "Google", "Amazon", "Autodesk", "Atlassian", "Intuit",
    "Cisco", "Red Hat", "JetBrains", "The MathWorks", "Apple", "Corel", "Bentley", "Dassault Systemes", "ESRI",
    "Esri", "Siemens", "SAP", "Salesforce", "Trimble", "PTC", "National Instruments", "StataCorp", "Qlik Tech",
    "Facebook", "Meta", "VMware", "Hyland", "Blackbaud", "Epic Systems", "Sage", "Infor", "Micro Focus",
    "Progress", "Citrix", "Broadcom", "SolarWinds", "Tableau", "Unity Technologies", "Epic Games", "Elastic",
    "Hewlett Packard", "HP", "Dell", "Mozilla", "Docker", "HashiCorp", "Puppet", "Chef", "Palo Alto Networks",
]

# Single words that are skills but also ordinary English ("excel at", "go to", "spring 2019"): accepted
# only in a skill context and in the listed capitalisation.  Words of two letters or fewer, and tool names
# that the general-English vocabulary knows, are added to this set at build time.
ALWAYS_CONTEXT = {
    "go", "r", "c", "d", "excel", "swift", "rust", "spring", "access", "word", "outlook", "teams", "project",
    "office", "express", "ember", "meteor", "chef", "puppet", "salt", "vault", "consul", "jest", "mocha",
    "chai", "less", "hive", "pig", "spark", "storm", "flume", "rails", "sketch", "unity", "nuke", "sage",
    "crystal", "basic", "shell", "scheme", "dart", "julia", "ada", "logo", "pascal", "elm", "io", "eclipse",
    "zoom", "slack", "box", "dash", "pulse", "compass", "canvas", "notes", "sharp", "matter", "apex",
    "processing", "linear", "prism", "solid", "next", "nest", "remix", "arc", "publisher", "dynamics",
    "epic", "power", "windows", "mac", "make", "ant", "ionic", "backbone", "knockout", "polymer", "redux",
    "bamboo", "lotus", "blackboard", "maya", "gatsby", "aurelia", "sas",
    # ESCO's bracket-qualified product names ("Scratch (computer programming)") that O*NET's prose lacks.
    "scratch", "absorb", "rage", "shiva", "frostbite",
}

GENERIC_LABELS = {
    "management", "research", "design", "team", "planning", "development", "analysis", "support", "service",
    "services", "communication", "operations", "sales", "training", "work", "business", "technology",
    "engineering", "production", "quality", "safety", "health", "energy", "logic", "history", "literature",
    "guide", "interview", "rights", "gold", "silver", "platinum", "clay", "medicine", "medicines", "reproduction",
    "copying", "diet", "computer", "computers", "software", "internet", "email", "e-mail", "web", "data",
    "information", "systems", "system", "office", "administration", "documentation", "reporting", "testing",
    "maintenance", "security", "marketing", "finance", "accounting", "teaching", "nursing", "writing",
    "reading", "speaking", "listening", "coordination", "monitoring", "instruction", "learning", "language",
    "languages", "mathematics", "science", "law", "art", "music", "sport", "sports", "food", "drawing",
    "driving", "cleaning", "cooking", "selling", "buying", "trading", "budget", "budgets", "policy",
    "strategy", "leadership", "teamwork", "customer", "customers", "client", "clients", "product",
    "products", "project", "projects", "people", "staff", "process", "processes", "procedures", "standards",
    "social media", "spreadsheet software", "word processing software", "email software", "web browser software",
    "operating system software", "database software", "scheduling software", "graphics software",
    "presentation software", "internet browser software", "electronic mail software", "file versioning software",
    "data entry software", "calendar and scheduling software", "instant messaging software",
    "video conferencing software", "office suite software", "time accounting software", "tax software",
    "statistical software", "image scanning software", "inventory tracking software", "facebook",
    "youtube", "linkedin", "twitter", "instagram", "social media sites", "word processing", "mail",
    "phone", "telephone", "fax", "copier", "calculator", "calendar", "internet explorer",
}
# Generic single words we still want to recognise (they carry real signal in CVs); kept even though the
# general-English filter would drop them.
KEEP_SINGLE = {
    "accounting", "marketing", "nursing", "teaching", "budgeting", "bookkeeping", "auditing", "payroll",
    "welding", "carpentry", "plumbing", "phlebotomy", "recruiting", "recruitment", "merchandising",
    "forecasting", "underwriting", "taxation", "invoicing", "scheduling", "negotiation", "leadership",
    "teamwork", "communication", "machining", "soldering", "surveying", "drafting", "landscaping",
    "bartending", "catering", "baking", "pastry", "butchery", "telemarketing", "copywriting", "editing",
    "proofreading", "photography", "videography", "animation", "illustration", "typography", "branding",
    "advertising", "fundraising", "lobbying", "mediation", "litigation", "conveyancing", "pharmacology",
    "physiotherapy", "radiology", "dermatology", "cardiology", "oncology", "pediatrics", "paediatrics",
    "nutrition", "dietetics", "counselling", "counseling", "tutoring", "coaching", "mentoring", "logistics",
    "procurement", "purchasing", "warehousing", "inventory", "compliance", "cybersecurity",
    "networking", "virtualization", "programming", "debugging", "statistics", "econometrics", "robotics",
    "electronics", "hydraulics", "pneumatics", "metallurgy", "geology", "hydrology", "agronomy", "horticulture",
    "forestry", "aquaculture", "microbiology", "biochemistry", "immunology", "epidemiology", "toxicology",
    "triage", "cpr", "first aid", "sanitation", "hospitality", "housekeeping", "upholstery", "tailoring",
    "sewing", "embroidery", "masonry", "bricklaying", "roofing", "plastering", "tiling", "glazing",
}

LANGUAGES = [
    "English", "Spanish", "French", "German", "Italian", "Portuguese", "Dutch", "Russian", "Polish",
    "Ukrainian", "Czech", "Slovak", "Hungarian", "Romanian", "Bulgarian", "Greek", "Turkish", "Arabic",
    "Hebrew", "Persian", "Farsi", "Urdu", "Hindi", "Bengali", "Punjabi", "Tamil", "Telugu", "Marathi",
    "Gujarati", "Kannada", "Malayalam", "Mandarin", "Cantonese", "Chinese", "Japanese", "Korean",
    "Vietnamese", "Thai", "Indonesian", "Malay", "Tagalog", "Filipino", "Swahili", "Amharic", "Yoruba",
    "Hausa", "Igbo", "Zulu", "Afrikaans", "Swedish", "Norwegian", "Danish", "Finnish", "Icelandic",
    "Estonian", "Latvian", "Lithuanian", "Serbian", "Croatian", "Bosnian", "Slovenian", "Albanian",
    "Macedonian", "Catalan", "Basque", "Galician", "Irish", "Welsh", "Latin", "Sign Language",
    "American Sign Language", "ASL", "British Sign Language", "Haitian Creole", "Somali", "Nepali", "Sinhala",
    "Burmese", "Khmer", "Lao", "Mongolian", "Kazakh", "Uzbek", "Georgian", "Armenian", "Azerbaijani",
]

# canonical name, group, aliases, related canonical names.  Hand-checked synonyms that the open data
# lacks (Stack Overflow's synonym table is not in the data set).
CURATED: list[tuple[str, str, list[str], list[str]]] = [
    ("JavaScript", "tool", ["JS", "ECMAScript", "ES6", "Javascript", "Java Script"], ["TypeScript", "Node.js"]),
    ("TypeScript", "tool", ["TS"], ["JavaScript"]),
    ("Node.js", "tool", ["Node", "NodeJS", "Node JS", "Nodejs"], ["JavaScript", "Express"]),
    ("Express", "tool", ["Express.js", "ExpressJS"], ["Node.js"]),
    ("React", "tool", ["React.js", "ReactJS", "React JS"], ["Vue.js", "Angular", "JavaScript", "Redux"]),
    ("React Native", "tool", [], ["React", "Flutter"]),
    ("Redux", "tool", [], ["React"]),
    ("Vue.js", "tool", ["Vue", "VueJS", "Vue JS"], ["React", "Angular", "JavaScript"]),
    ("Angular", "tool", ["AngularJS", "Angular.js", "Angular 2"], ["React", "Vue.js", "TypeScript"]),
    ("Next.js", "tool", ["NextJS"], ["React"]),
    ("Kubernetes", "tool", ["k8s", "K8s", "kube"], ["Docker", "Helm", "OpenShift"]),
    ("Docker", "tool", ["Docker Compose", "docker-compose"], ["Kubernetes", "Podman"]),
    ("Helm", "tool", [], ["Kubernetes"]),
    ("Terraform", "tool", ["HashiCorp Terraform"], ["Ansible", "AWS CloudFormation", "Pulumi"]),
    ("Ansible", "tool", ["Red Hat Ansible"], ["Terraform", "Puppet", "Chef"]),
    ("Amazon Web Services", "tool", ["AWS", "Amazon AWS", "Amazon Web Services AWS software"],
     ["Microsoft Azure", "Google Cloud Platform"]),
    ("Microsoft Azure", "tool", ["Azure", "MS Azure", "Microsoft Azure software"],
     ["Amazon Web Services", "Google Cloud Platform"]),
    ("Google Cloud Platform", "tool", ["GCP", "Google Cloud"], ["Amazon Web Services", "Microsoft Azure"]),
    ("Python", "tool", ["Python 3", "Python3", "Python 2"], ["Django", "Flask", "Pandas"]),
    ("Django", "tool", [], ["Python", "Flask"]),
    ("Flask", "tool", [], ["Python", "Django", "FastAPI"]),
    ("FastAPI", "tool", [], ["Python", "Flask"]),
    ("Pandas", "tool", [], ["Python", "NumPy"]),
    ("NumPy", "tool", [], ["Python", "Pandas"]),
    ("scikit-learn", "tool", ["sklearn", "scikit learn"], ["Python", "Machine learning"]),
    ("TensorFlow", "tool", ["Tensorflow"], ["PyTorch", "Keras", "Machine learning"]),
    ("PyTorch", "tool", ["Torch"], ["TensorFlow", "Machine learning"]),
    ("Keras", "tool", [], ["TensorFlow"]),
    ("Machine learning", "hard_skill", ["ML", "machine-learning"], ["Deep learning", "Data science"]),
    ("Deep learning", "hard_skill", ["DL"], ["Machine learning"]),
    ("Natural language processing", "hard_skill", ["NLP"], ["Machine learning"]),
    ("Data science", "hard_skill", [], ["Machine learning", "Statistics"]),
    ("Java", "tool", ["Oracle Java", "Java SE", "Java EE", "J2EE", "Core Java"], ["Kotlin", "Spring", "Scala"]),
    ("Spring", "tool", ["Spring Boot", "Spring Framework", "SpringBoot", "Spring MVC"], ["Java"]),
    ("Kotlin", "tool", [], ["Java"]),
    ("Scala", "tool", [], ["Java", "Apache Spark"]),
    ("Go", "tool", ["Golang", "Go language", "Go programming"], ["Rust", "C++"]),
    ("Rust", "tool", ["Rust language", "Rust programming"], ["C++", "Go"]),
    ("C", "tool", ["C language", "C programming", "ANSI C"], ["C++"]),
    ("C++", "tool", ["CPP", "C plus plus"], ["C", "C#", "Rust"]),
    ("C#", "tool", ["C Sharp", "CSharp", "C #"], [".NET", "Java"]),
    (".NET", "tool", ["dotnet", "dot net", ".NET Core", "ASP.NET", "ASP.NET Core", "Microsoft .NET Framework"],
     ["C#"]),
    ("R", "tool", ["R language", "R programming", "RStudio", "R Studio"], ["Python", "Statistics"]),
    ("Swift", "tool", ["Apple Swift", "Swift language", "SwiftUI"], ["Objective-C", "iOS"]),
    ("Objective-C", "tool", ["ObjC", "Objective C"], ["Swift"]),
    ("PHP", "tool", [], ["Laravel"]),
    ("Laravel", "tool", [], ["PHP"]),
    ("Ruby", "tool", [], ["Ruby on Rails"]),
    ("Ruby on Rails", "tool", ["Rails", "RoR"], ["Ruby"]),
    ("SQL", "tool", ["Structured query language SQL", "Structured Query Language", "T-SQL", "TSQL", "PL/SQL"],
     ["PostgreSQL", "MySQL", "Microsoft SQL Server"]),
    ("PostgreSQL", "tool", ["Postgres", "Postgre SQL", "psql"], ["MySQL", "SQL"]),
    ("MySQL", "tool", ["My SQL"], ["PostgreSQL", "SQL"]),
    ("Microsoft SQL Server", "tool", ["SQL Server", "MSSQL", "MS SQL", "MS SQL Server"], ["SQL"]),
    ("MongoDB", "tool", ["Mongo", "Mongo DB"], ["NoSQL"]),
    ("NoSQL", "hard_skill", [], ["MongoDB", "Apache Cassandra"]),
    ("Redis", "tool", [], []),
    ("Elasticsearch", "tool", ["Elastic Search", "ELK"], []),
    ("Apache Kafka", "tool", ["Kafka"], ["RabbitMQ"]),
    ("RabbitMQ", "tool", ["Rabbit MQ"], ["Apache Kafka"]),
    ("Apache Spark", "tool", ["Spark", "PySpark"], ["Apache Hadoop", "Scala"]),
    ("Apache Hadoop", "tool", ["Hadoop"], ["Apache Spark"]),
    ("GraphQL", "tool", ["Graph QL"], ["REST APIs"]),
    ("REST APIs", "hard_skill", ["REST", "RESTful", "REST API", "RESTful APIs", "RESTful services"], ["GraphQL"]),
    ("Microservices", "hard_skill", ["microservice architecture", "micro-services"], []),
    ("CI/CD", "hard_skill", ["CI / CD", "continuous integration", "continuous delivery", "continuous deployment",
                             "CICD"], ["Jenkins", "GitHub Actions", "GitLab CI"]),
    ("Jenkins", "tool", [], ["CI/CD"]),
    ("GitHub Actions", "tool", [], ["CI/CD"]),
    ("GitLab CI", "tool", ["GitLab CI/CD"], ["CI/CD"]),
    ("Git", "tool", ["GitHub", "GitLab", "Bitbucket"], []),
    ("Linux", "tool", ["GNU/Linux", "Ubuntu", "Red Hat Enterprise Linux", "RHEL", "CentOS", "Debian"], ["UNIX"]),
    ("HTML", "tool", ["HTML5", "Hypertext markup language HTML"], ["CSS"]),
    ("CSS", "tool", ["CSS3", "Cascading style sheets CSS", "SCSS", "Sass"], ["HTML"]),
    ("Microsoft Excel", "tool", ["Excel", "MS Excel", "MSExcel", "Excel spreadsheets", "Microsoft Excel 365"],
     ["Microsoft Office"]),
    ("Microsoft Word", "tool", ["MS Word", "Word"], ["Microsoft Office"]),
    ("Microsoft PowerPoint", "tool", ["PowerPoint", "MS PowerPoint", "Power Point"], ["Microsoft Office"]),
    ("Microsoft Outlook", "tool", ["Outlook", "MS Outlook"], ["Microsoft Office"]),
    ("Microsoft Access", "tool", ["MS Access", "Access"], ["Microsoft Office"]),
    ("Microsoft Office", "tool", ["MS Office", "Office 365", "Microsoft Office Suite", "Microsoft 365", "M365",
                                 "Microsoft Office software"], ["Microsoft Excel", "Microsoft Word"]),
    ("Microsoft Teams", "tool", ["MS Teams", "Teams"], []),
    ("Microsoft Project", "tool", ["MS Project"], []),
    ("Microsoft Power BI", "tool", ["Power BI", "PowerBI"], ["Tableau"]),
    ("Tableau", "tool", ["Tableau Desktop"], ["Microsoft Power BI"]),
    ("Salesforce", "tool", ["Salesforce CRM", "SFDC", "Salesforce software", "Salesforce.com"], ["HubSpot"]),
    ("HubSpot", "tool", [], ["Salesforce"]),
    ("SAP", "tool", ["SAP ERP", "SAP software", "SAP S/4HANA", "SAP R/3"], ["Oracle E-Business Suite"]),
    ("Intuit QuickBooks", "tool", ["QuickBooks", "Quickbooks", "QuickBooks Online"], []),
    ("Adobe Photoshop", "tool", ["Photoshop"], ["Adobe Illustrator"]),
    ("Adobe Illustrator", "tool", ["Illustrator"], ["Adobe Photoshop", "Adobe InDesign"]),
    ("Adobe InDesign", "tool", ["InDesign"], ["Adobe Illustrator"]),
    ("Autodesk AutoCAD", "tool", ["AutoCAD", "Auto CAD"], ["Autodesk Revit"]),
    ("Autodesk Revit", "tool", ["Revit"], ["Autodesk AutoCAD"]),
    ("Dassault Systemes SolidWorks", "tool", ["SolidWorks", "Solidworks", "Solid Works"], ["Autodesk AutoCAD"]),
    ("The MathWorks MATLAB", "tool", ["MATLAB", "Matlab"], ["R", "Python"]),
    ("Atlassian JIRA", "tool", ["JIRA", "Jira"], ["Atlassian Confluence"]),
    ("Atlassian Confluence", "tool", ["Confluence"], ["Atlassian JIRA"]),
    ("Agile", "hard_skill", ["Agile methodologies", "Agile methodology", "agile development"], ["Scrum"]),
    ("Scrum", "hard_skill", [], ["Agile", "Kanban"]),
    ("Kanban", "hard_skill", [], ["Scrum"]),
    ("Unit testing", "hard_skill", ["unit tests"], ["Test automation"]),
    ("Test automation", "hard_skill", ["automated testing"], ["Selenium", "Unit testing"]),
    ("Selenium", "tool", ["Selenium WebDriver"], ["Test automation"]),
    ("Statistics", "hard_skill", ["statistical analysis"], ["Data science"]),
    ("Data analysis", "hard_skill", ["data analytics"], ["Statistics"]),
    ("Project management", "hard_skill", ["project planning"], ["Agile"]),
    ("Customer service", "soft_skill", ["customer support", "client service"], []),
    ("Communication", "soft_skill", ["communication skills", "verbal communication", "written communication"], []),
    ("Leadership", "soft_skill", ["team leadership", "leadership skills"], []),
    ("Teamwork", "soft_skill", ["team player", "collaboration", "team work"], []),
    ("Problem solving", "soft_skill", ["problem-solving", "troubleshooting skills"], []),
    ("Time management", "soft_skill", [], []),
    ("Attention to detail", "soft_skill", ["detail-oriented", "detail oriented"], []),
    ("Critical thinking", "soft_skill", [], []),
    ("Negotiation", "soft_skill", ["negotiating"], []),
    ("Public speaking", "soft_skill", ["presentation skills"], []),
    ("Accounts payable", "hard_skill", ["AP"], ["Accounts receivable"]),
    ("Accounts receivable", "hard_skill", ["AR"], ["Accounts payable"]),
    ("General ledger", "hard_skill", ["GL"], []),
    ("Financial reporting", "hard_skill", [], []),
    ("Financial analysis", "hard_skill", [], []),
    ("Budgeting", "hard_skill", ["budget management"], []),
    ("Payroll", "hard_skill", [], []),
    ("Bookkeeping", "hard_skill", [], []),
    ("GAAP", "hard_skill", ["Generally Accepted Accounting Principles", "US GAAP"], ["IFRS"]),
    ("IFRS", "hard_skill", [], ["GAAP"]),
    ("Search engine optimization", "hard_skill", ["SEO"], []),
    ("Research and development", "hard_skill", ["R&D"], []),
]

# Common modern titles that O*NET's alternate titles lack or assign oddly.
CURATED_TITLES: dict[str, list[str]] = {
    "15-1252.00": ["software engineer", "backend engineer", "backend developer", "back-end developer",
                   "back end developer", "frontend engineer", "frontend developer", "front-end developer",
                   "front end developer", "full stack developer", "full-stack developer", "fullstack developer",
                   "full stack engineer", "fullstack engineer", "devops engineer", "site reliability engineer",
                   "platform engineer", "mobile developer", "ios developer", "android developer",
                   "python developer", "java developer", "golang developer", "go developer", "node.js developer",
                   "react developer", "software development engineer", ".net developer", "php developer"],
    "15-2051.00": ["data scientist", "machine learning engineer", "ml engineer", "ai engineer"],
    "15-1243.00": ["data engineer", "big data engineer", "etl developer"],
    "15-1253.00": ["qa engineer", "test engineer", "quality assurance engineer", "sdet", "qa analyst"],
    "15-1255.00": ["ux designer", "ui designer", "ui/ux designer", "product designer"],
    "15-1244.00": ["cloud engineer", "systems engineer", "infrastructure engineer"],
    "15-1212.00": ["security engineer", "cybersecurity analyst", "security analyst"],
}

CERTIFICATIONS: list[tuple[str, list[str]]] = [
    ("PMP", ["Project Management Professional"]),
    ("CPA", ["Certified Public Accountant"]),
    ("CFA", ["Chartered Financial Analyst"]),
    ("CMA", ["Certified Management Accountant"]),
    ("ACCA", []),
    ("CISSP", []),
    ("CISA", []),
    ("CISM", []),
    ("CompTIA Security+", ["Security+"]),
    ("CompTIA A+", ["A+ certification", "A+ certified"]),
    ("CompTIA Network+", ["Network+"]),
    ("CCNA", ["Cisco Certified Network Associate"]),
    ("CCNP", ["Cisco Certified Network Professional"]),
    ("AWS Certified Solutions Architect", ["AWS Solutions Architect"]),
    ("AWS Certified Developer", []),
    ("Certified Kubernetes Administrator", ["CKA"]),
    ("Certified ScrumMaster", ["CSM", "Certified Scrum Master", "Professional Scrum Master", "PSM"]),
    ("ITIL", ["ITIL Foundation"]),
    ("Six Sigma", ["Lean Six Sigma", "Six Sigma Green Belt", "Six Sigma Black Belt"]),
    ("PHR", ["Professional in Human Resources"]),
    ("SHRM-CP", ["SHRM Certified Professional"]),
    ("SPHR", []),
    ("Registered Nurse", ["RN license", "RN licence"]),
    ("BLS", ["Basic Life Support", "BLS certification"]),
    ("ACLS", ["Advanced Cardiovascular Life Support"]),
    ("CPR certification", ["CPR certified", "CPR/AED"]),
    ("ServSafe", ["ServSafe Certification", "ServSafe Manager"]),
    ("OSHA 30", ["OSHA 30-hour", "OSHA 10", "OSHA certification"]),
    ("CDL", ["Commercial Driver's License", "Commercial Drivers License", "Class A CDL"]),
    ("FAA A&P", ["A&P license", "Airframe and Powerplant"]),
    ("Series 7", ["FINRA Series 7"]),
    ("Series 63", []),
    ("Google Analytics Certification", ["GAIQ"]),
    ("Microsoft Certified", ["MCSE", "MCSA", "MCP"]),
    ("Oracle Certified Professional", ["OCP", "OCA"]),
    ("Certified Personal Trainer", ["NASM", "ACE certified", "NASM-CPT", "ACSM"]),
    ("Teaching certification", ["teaching license", "teaching licence", "teacher certification",
                                "state teaching certificate"]),
    ("CFP", ["Certified Financial Planner"]),
    ("CIA", ["Certified Internal Auditor"]),
    ("LEED AP", ["LEED Accredited Professional", "LEED Green Associate"]),
    ("PE license", ["Professional Engineer", "P.E."]),
    ("EIT", ["Engineer in Training"]),
]

SO_PLATFORMS = {"aws", "azure", "google", "apache", "amazon", "spring", "django", "react", "angular", "vue",
                "asp.net", "entity", "ruby", "microsoft", "apple", "ibm", "oracle", "sql", "twitter", "jquery"}
SO_CONCEPTS = set("""
abstract adapter admin aggregate algorithm annotations api apk append applet arraylist ascii asynchronous
authentication autocomplete autolayout average backend binary bitmap blob bluetooth boolean bots browser
buffer bundle button byte caching callback canvas carousel categories char checkbox click clone closures
cmd com combobox comparison concatenation concurrency config constants constructor contextmenu cookies
cpu crash cron cursor customization datagrid datagridview dataset datasource datatable datepicker datetime
decimal decorator delegates dependencies deserialization dialog dictionary diff distinct dll dom double
download dropdown duplicates echo encoding entity enums eval exception exec fetch filtering fonts foreach
fork formatting fragment frontend gem generics geolocation gps gpu graph grid gridview grouping hash
hashmap hashtable header heap hex hide histogram hover href http https hyperlink icons ide iframe imageview
indexing inheritance initialization inputstream instance int integer interop interpolation iteration
iterator jar json kernel lambda listbox listener listview locale localhost localization locking login
loops macros math matrix max merge mocking module mouse mouseevent mutex native nested newline nodes
notifications null oop overflow overlay overloading overriding pagination parsing passwords pdf
permissions permutation persistence pickle pivot plugins png pointers polymorphism popup printf profiling
promise proxy queue random recursion redirect refactoring reflection refresh regex registry regression
rename render rendering repository resize responsive rounding row rows runtime save scanf schema
screenshot scroll scrollbar scrollview sdk serialization shader singleton slider sms spinner sprite std
stdout streaming struct subdomain subprocess subquery subset substring sum synchronization syntax tabs
textarea textbox textures textview timeout timer timestamp timezone toggle token tooltip triggers tuples
undefined unicode upload uri url usb vector vectorization version viewmodel visualization widget wifi
wildcard zip zooming webserver websocket emulation filesystems bigdata blackberry ipad iphone cpanel
""".split())
# ESCO alternative labels that point at the wrong concept (e.g. "Mocha", a test runner, under JavaScript).
BAD_ESCO_ALIASES = {"mocha", "escript", "live script", "live-script", "csjs"}
# Labels that resolve to the wrong concept or are ordinary phrases, found among the most frequent hits on
# resume text ("source" -> Source 2, "pos" -> blockchain consensus, "did" -> direct inward dialing).
BAD_LABELS = {
    "source", "pos", "did", "cpt", "spe", "ems", "jersey", "boost", "presenter", "wild", "fastest",
    "after the deadline", "application procedure", "application process", "be responsible",
}
# ESCO's "Name (kind of thing)" preferred labels of products and languages.
_ESCO_QUALIFIED = re.compile(r"^(?P<name>[^()]+?)\s*\((?P<kind>[^()]+)\)$")
# A label starting with a function word is a fragment of a longer ESCO label ("and procedures").
_FRAGMENT = re.compile(r"^(?:and|or|of|the|a|an|to|for|with|in|on|be)\s")

_VERSIONED_TAG = re.compile(r"(-\d|\d+\.x$|-\d{4}$|\d$)")
_ACRONYM_TAIL = re.compile(r"^(?P<full>.+?)\s+(?P<acr>[A-Z][A-Z0-9/&+.-]{1,9})(?:\s+(?:software|systems?))?$")


def norm(label: str) -> str:
    """Matching form of a label: lowercased, whitespace collapsed (the engine normalises text the same way)."""
    return " ".join(label.replace("\u2019", "'").lower().split())


def slug(label: str) -> str:
    s = re.sub(r"[^a-z0-9+#.]+", "-", label.lower()).strip("-")
    return s or hashlib.sha1(label.encode()).hexdigest()[:10]


@dataclass
class Skill:
    name: str
    group: str
    aliases: dict[str, str] = field(default_factory=dict)  # norm -> original surface
    related: set[str] = field(default_factory=set)  # names, resolved to ids at the end
    category: str | None = None
    popularity: int = 0
    sources: set[str] = field(default_factory=set)
    # Number of O*NET occupations listing this product (0: not an O*NET technology).  The engine turns it
    # into a rarity weight: a tool every occupation lists (Excel, Outlook) says little about fit.
    onet_occupations: int = 0


@dataclass
class Occupation:
    id: str
    name: str
    sector: str
    titles: dict[str, str] = field(default_factory=dict)
    related: list[str] = field(default_factory=list)
    description: str = ""


class Builder:
    """Accumulates skills and occupations; labels are keyed by normalised form so sources merge."""

    def __init__(self, general_vocab: Counter[str]) -> None:
        self.general = general_vocab
        self.skills: dict[str, Skill] = {}  # by norm(canonical name)
        self.alias_owner: dict[str, str] = {}  # norm(alias) -> norm(canonical)
        self.dropped: Counter[str] = Counter()

    def is_general_word(self, word: str) -> bool:
        return self.general[word.lower()] >= GENERAL_WORD_MIN_COUNT

    def label_ok(self, label: str, *, trusted: bool = False) -> bool:
        n = norm(label)
        words = n.split()
        if not words or len(n) > MAX_LABEL_CHARS or len(words) > MAX_SKILL_WORDS:
            self.dropped["long"] += 1
            return False
        if n in GENERIC_LABELS and not trusted:
            self.dropped["generic"] += 1
            return False
        if (n in BAD_LABELS or _FRAGMENT.match(n)) and not trusted:
            self.dropped["bad_or_fragment"] += 1
            return False
        if re.fullmatch(r"[\d\W]+", n):
            self.dropped["numeric"] += 1
            return False
        if len(words) == 1 and not trusted:
            if n in KEEP_SINGLE:
                return True
            # Ordinary lowercase English words ("guide", "clay") are the main false-positive source.
            if label.islower() and self.is_general_word(n):
                self.dropped["general_word"] += 1
                return False
            if len(n) < 3:
                self.dropped["short"] += 1
                return False
        if any(ch in n for ch in "()[];"):
            self.dropped["punct"] += 1
            return False
        return True

    def add(self, name: str, group: str, aliases: Iterable[str], source: str, *, trusted: bool = False,
            category: str | None = None, popularity: int = 0) -> Skill | None:
        key = norm(name)
        owner = self.alias_owner.get(key)
        skill = self.skills.get(owner) if owner else None
        if skill is None:
            if not self.label_ok(name, trusted=trusted):
                return None
            skill = Skill(name=name, group=group, category=category)
            self.skills[key] = skill
            self._claim(key, name, key)
        skill.sources.add(source)
        skill.popularity += popularity
        if skill.category is None and category:
            skill.category = category
        owner_key = norm(skill.name)
        for alias in aliases:
            a = norm(alias)
            if not a or a in self.alias_owner:
                continue
            if not self.label_ok(alias, trusted=trusted):
                continue
            self._claim(a, alias, owner_key)
        return skill

    def add_unlabelled(self, name: str, group: str, aliases: Iterable[str], source: str) -> Skill | None:
        """A skill found by its aliases only: its name stays its name but is not matched in text."""
        key = norm(name)
        labels = [a for a in aliases if norm(a) and norm(a) not in self.alias_owner and self.label_ok(a)]
        if not labels or key in self.alias_owner:
            return None
        skill = self.skills.get(key)
        if skill is None:
            skill = self.skills[key] = Skill(name=name, group=group)
        skill.sources.add(source)
        for alias in labels:
            self._claim(norm(alias), alias, key)
        return skill

    def _claim(self, a: str, surface: str, owner_key: str) -> None:
        self.alias_owner[a] = owner_key
        self.skills[owner_key].aliases[a] = surface


def title_word_df(occupations: Iterable[Occupation]) -> dict[str, int]:
    """Occupation count per title word (words in two or more occupations' titles)."""
    df: Counter[str] = Counter()
    for occ in occupations:
        df.update({w for t in [norm(occ.name), *occ.titles] for w in title_words(t)})
    return {w: n for w, n in sorted(df.items()) if n >= 2}


def _group(rows: list[dict[str, str]], key: str, value: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        out[r[key]].add(r[value])
    return out


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def general_vocabulary(onet: Path, esco_occ: list[dict[str, str]]) -> Counter[str]:
    """Lowercase word counts from prose (tasks, descriptions): what counts as ordinary English here."""
    counts: Counter[str] = Counter()
    texts = [r["Task"] for r in read_tsv(onet / "Task Statements.txt")]
    texts += [r["Description"] for r in read_tsv(onet / "Occupation Data.txt")]
    texts += [r["DESCRIPTION"] for r in esco_occ]
    for text in texts:
        # Only lowercase occurrences: "Python" capitalised in prose is a product, "python" is not.
        for w in re.findall(r"\b[a-z][a-z'-]*\b", text):
            counts[w] += 1
    return counts


def onet_aliases(example: str) -> tuple[str, list[str]]:
    """Derive canonical name and aliases for an O*NET product name ("Microsoft Excel" -> "Excel")."""
    aliases = [example]
    base = example
    m = _ACRONYM_TAIL.match(example)
    if m and len(m.group("acr")) >= 2:
        full, acr = m.group("full"), m.group("acr")
        initials = "".join(w[0] for w in full.split() if w[0].isalpha()).upper()
        # A one-word "full" form is a vendor, not the acronym's expansion ("IBM ILOG", "Adobe AIR").
        if len(initials) >= 2 and (acr.replace("/", "").upper().startswith(initials[:2])
                                   or acr.upper() in initials):
            aliases += [full, acr]
    if base.endswith(" software"):
        aliases.append(base[: -len(" software")])
    for vendor in VENDORS:
        if base.startswith(vendor + " ") and len(base) > len(vendor) + 2:
            rest = base[len(vendor) + 1:]
            if rest.endswith(" software"):
                rest = rest[: -len(" software")]
            # A short all-caps remainder names a product category, not this product ("Blackbaud CRM",
            # "Oracle HRIS"): as an alias it would claim every CV that mentions a CRM.
            if len(rest) >= 2 and not (rest.isupper() and rest.isalpha() and len(rest) <= 4):
                aliases.append(rest)
    return example, aliases


def occupation_profiles(onet: Path, occ_index: dict[str, int]) -> dict[str, object]:
    """TF-IDF term profiles of the O*NET occupations that have task statements, as an inverted index.

    Each profile keeps its PROFILE_TERMS strongest terms and is L2-normalised after pruning, so a cosine is
    a plain dot product.  Output, all flat integer arrays (numbers times WEIGHT_SCALE) so the engine loads
    them fast: ``occupations`` (indices into the taxonomy's occupation list, in profile order), ``terms``
    (sorted), ``idf`` and ``counts`` (postings) per term, and per posting, grouped by term in term order,
    ``postings_occupation`` (profile index) and ``postings_weight``.
    """
    fields: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in read_tsv(onet / "Occupation Data.txt"):
        # O*NET names occupations in the plural ("Carpenters"); CVs and job ads name a person ("Carpenter").
        fields[r["O*NET-SOC Code"]]["title"].append(singular_title(norm(r["Title"])))
        fields[r["O*NET-SOC Code"]]["description"].append(r["Description"])
    for r in read_tsv(onet / "Alternate Titles.txt"):
        fields[r["O*NET-SOC Code"]]["alt"].append(r["Alternate Title"])
    for r in read_tsv(onet / "Sample of Reported Titles.txt"):
        fields[r["O*NET-SOC Code"]]["alt"].append(r["Reported Job Title"])
    for r in read_tsv(onet / "Task Statements.txt"):
        fields[r["O*NET-SOC Code"]]["task"].append(r["Task"])
    for r in read_tsv(onet / "Technology Skills.txt"):
        fields[r["O*NET-SOC Code"]]["tech"].append(r["Example"])
    # Occupations without tasks are O*NET's "all other" buckets and retired codes: no profile to speak of.
    codes = sorted(c for c in fields if fields[c]["task"] and c in occ_index)
    tfs: list[dict[str, float]] = []
    for code in codes:
        tf: dict[str, float] = defaultdict(float)
        for name, weight in PROFILE_FIELD_WEIGHTS.items():
            for text in fields[code][name]:
                for term in profile_terms(text):
                    tf[term] += weight
        tfs.append(tf)
    df: Counter[str] = Counter()
    for tf in tfs:
        df.update(tf.keys())
    n = len(codes)
    idf = {t: math.log(n / c) for t, c in df.items() if c < n}
    postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, tf in enumerate(tfs):
        weights = sorted(((t, term_weight(x, idf[t])) for t, x in tf.items() if t in idf), key=lambda p: (-p[1], p[0]))
        top = weights[:PROFILE_TERMS]
        length = math.sqrt(sum(w * w for _t, w in top)) or 1.0
        for t, w in top:
            postings[t].append((i, round(WEIGHT_SCALE * w / length)))
    terms = sorted(postings)
    return {
        "occupations": [occ_index[c] for c in codes],
        "terms": terms,
        "idf": [round(WEIGHT_SCALE * idf[t]) for t in terms],
        "counts": [len(postings[t]) for t in terms],
        "postings_occupation": [i for t in terms for i, _w in postings[t]],
        "postings_weight": [w for t in terms for _i, w in postings[t]],
    }


def build(data: Path) -> dict[str, object]:
    onet = data / "onet"
    esco = data / "esco"
    esco_occ = read_csv(esco / "tabiya_esco_v1.1.1" / "occupations.csv")
    general = general_vocabulary(onet, esco_occ)
    b = Builder(general)

    # 1. Curated entries first: they own their aliases, so noisy sources cannot steal "JS" or "Excel".
    for name, group, aliases, related in CURATED:
        sk = b.add(name, group, aliases, "curated", trusted=True)
        assert sk is not None
        sk.related.update(related)
    for name, aliases in CERTIFICATIONS:
        b.add(name, "certification", aliases, "curated", trusted=True)
    for lang in LANGUAGES:
        b.add(lang, "language", [], "curated", trusted=True)

    # 2. O*NET technology skills: product names with commodity classes (for "related") and popularity.
    tech = read_tsv(onet / "Technology Skills.txt")
    occ_count: Counter[str] = Counter(r["Example"] for r in tech)
    n_occ_listing = {ex: len(codes) for ex, codes in _group(tech, "Example", "O*NET-SOC Code").items()}
    onet_occupations_with_tech = len({r["O*NET-SOC Code"] for r in tech})
    hot = {r["Example"] for r in tech if r["Hot Technology"] == "Y"}
    commodity: dict[str, str] = {}
    for r in tech:
        commodity.setdefault(r["Example"], r["Commodity Title"])
    for example in sorted(occ_count):
        name, aliases = onet_aliases(example)
        # "Google Analytics" -> "Analytics" would fire on the ordinary word; keep only distinctive remainders.
        aliases = [a for a in aliases if a == example or len(a.split()) > 1
                   or not (b.is_general_word(a) or norm(a) in GENERIC_LABELS)]
        pop = occ_count[example] + (20 if example in hot else 0)
        added = b.add(name, "tool", aliases, "onet", category=commodity[example], popularity=pop)
        if added is not None:
            added.onet_occupations = max(added.onet_occupations, n_occ_listing[example])

    # 3. Stack Overflow tags: popular, tech-shaped, not ordinary English; mostly add aliases and popularity.
    so_rows = read_csv(data / "stackoverflow_tags" / "stackoverflow_tags.csv")
    so_rows.sort(key=lambda r: (-int(r["Count"]), r["TagName"]))
    for r in so_rows:
        tag, count = r["TagName"], int(r["Count"])
        if count < SO_MIN_COUNT:
            break
        if _VERSIONED_TAG.search(tag) and not tag.endswith(".js"):
            continue
        spaced = tag.replace("-", " ")
        existing = b.alias_owner.get(norm(tag)) or b.alias_owner.get(norm(spaced))
        if existing:
            b.skills[existing].popularity += count // 1000
            b.skills[existing].sources.add("stackoverflow")
            continue
        words = re.split(r"[-\s]", tag)
        if all(b.is_general_word(w) or w in GENERIC_LABELS for w in words):
            continue
        # Most tags are questions' topics ("button", "null", "android-edittext"), not skills a CV lists:
        # admit single-token product names and multi-word tags led by a major platform only.
        if len(words) == 1:
            if tag in SO_CONCEPTS or any(b.is_general_word(w) for w in re.split(r"[.\d]+", tag) if w):
                continue
        elif words[0] not in SO_PLATFORMS or count < 2 * SO_MIN_COUNT or any(w in SO_CONCEPTS for w in words):
            continue
        b.add(spaced, "tool", [tag], "stackoverflow", popularity=count // 1000)

    # 4. ESCO skills: group from skill type and the transversal collection; labels pruned hard.
    transversal = {norm(r["preferredLabel"]) for r in read_csv(
        esco / "esco_official_csv_subset" / "transversalSkillsCollection_en.csv")}
    for r in read_csv(esco / "skills_en_v1.1.1_tabiya_via_northstar.csv"):
        pref = r["preferredLabel"].strip()
        if not pref:
            continue
        group = "soft_skill" if norm(pref) in transversal else "hard_skill"
        alts = [a.strip() for a in r["altLabels"].split("\n") if a.strip()]
        qualified = _ESCO_QUALIFIED.match(pref)
        if qualified:
            # "SaaS (service-oriented modelling)", "GIMP (graphics editor software)": ESCO names a product
            # with its kind in brackets; texts write the name alone.  A bracketed abbreviation
            # ("project management methodology (PM²)") is another name of the same thing.
            pref = qualified["name"]
            if " " in qualified["kind"]:
                group = "tool"
            else:
                alts.append(qualified["kind"])
        keep: list[str] = []
        # Competences are verb phrases ("manage musical staff"); long ones never occur verbatim in a CV and
        # only slow the matcher down.
        max_words = 3 if r["skillType"] == "skill/competence" else MAX_SKILL_WORDS
        if len(pref.split()) > max_words:
            alts = [a for a in alts if len(a.split()) <= max_words]
            if not alts:
                b.dropped["long"] += 1
                continue
            pref, alts = alts[0], alts[1:]
        for a in alts:
            if len(a.split()) > max_words:
                b.dropped["long"] += 1
                continue
            if norm(a) in BAD_ESCO_ALIASES:
                continue
            if len(a.split()) == 1 and a.islower() and norm(a) not in KEEP_SINGLE:
                # ESCO's single-word lowercase alternates are mostly synonyms-by-topic ("guide", "gold").
                if not re.search(r"(ology|ography|ometry|therapy|otomy|ics)$", a):
                    b.dropped["esco_single_alt"] += 1
                    continue
            keep.append(a)
        if b.add(pref, group, keep, "esco") is None:
            # A preferred label that is no label for the matcher ("resuscitation" and "physics" are ordinary
            # English here) used to take its alternates down with it ("cardiopulmonary resuscitation",
            # "CPR"): the skill keeps its name and is found by those.
            b.add_unlabelled(pref, group, keep, "esco")

    # 5. Occupations: O*NET (titles, sectors, related) then ESCO labels merged or added.
    occupations: dict[str, Occupation] = {}
    for r in read_tsv(onet / "Occupation Data.txt"):
        code = r["O*NET-SOC Code"]
        occupations[code] = Occupation(code, r["Title"], SOC_MAJOR.get(code[:2], "Other"),
                                       description=r["Description"])
    title_owners: dict[str, list[str]] = defaultdict(list)

    def add_title(occ: Occupation, title: str) -> None:
        t = norm(re.sub(r"\s*\([^)]*\)", "", title))
        if not t or len(t.split()) > MAX_TITLE_WORDS or len(t) > 60 or t in GENERIC_LABELS:
            return
        if t not in occ.titles:
            occ.titles[t] = title
            title_owners[t].append(occ.id)

    for occ in occupations.values():
        add_title(occ, occ.name)
        if occ.name.endswith("s") and not occ.name.endswith("ss"):
            add_title(occ, occ.name[:-1])
    for code, titles in CURATED_TITLES.items():
        for title in titles:
            add_title(occupations[code], title)
    for r in read_tsv(onet / "Sample of Reported Titles.txt"):
        if r["O*NET-SOC Code"] in occupations:
            add_title(occupations[r["O*NET-SOC Code"]], r["Reported Job Title"])
    for r in read_tsv(onet / "Alternate Titles.txt"):
        alt_occ = occupations.get(r["O*NET-SOC Code"])
        if alt_occ is None:
            continue
        add_title(alt_occ, r["Alternate Title"])
        if r["Short Title"] not in ("n/a", ""):
            add_title(alt_occ, r["Short Title"])
    for r in read_tsv(onet / "Related Occupations.txt"):
        rel_occ = occupations.get(r["O*NET-SOC Code"])
        if rel_occ is not None and r["Relatedness Tier"] == "Primary-Short" and len(rel_occ.related) < 10:
            rel_occ.related.append(r["Related O*NET-SOC Code"])

    esco_added = 0
    for r in esco_occ:
        labels = [r["PREFERREDLABEL"], *[a for a in r["ALTLABELS"].split("\n") if a.strip()]]
        # Merge into the O*NET occupation that already owns any of its labels, so both schemes agree on
        # occupation and sector ("fitness instructor" is O*NET 39-9031 and ESCO 3423).
        owners = next((title_owners[norm(x)] for x in labels if title_owners.get(norm(x))
                       and not title_owners[norm(x)][0].startswith("esco:")), None)
        if owners:
            target = occupations[owners[0]]
        else:
            isco = r["ISCOGROUPCODE"]
            soc = next((ISCO_TO_SOC[isco[:k]] for k in (3, 2, 1) if isco[:k] in ISCO_TO_SOC), "")
            oid = "esco:" + r["CODE"]
            target = Occupation(oid, r["PREFERREDLABEL"], SOC_MAJOR.get(soc, "Other"))
            occupations[oid] = target
            esco_added += 1
        for label in labels:
            add_title(target, label)

    # A single-word title owned by many occupations ("agent", "associate") says little: drop it.  Words
    # shared by a few ("teacher", "chef") stay; the engine maps them to their first owner and compares titles
    # by words as well, so the family still matches.
    generic_titles: set[str] = set()
    for t, owners in title_owners.items():
        if len(t.split()) == 1 and len(set(owners)) > 6:
            generic_titles.add(t)
            for oid in sorted(set(owners)):
                occupations[oid].titles.pop(t, None)

    # Resolve ids and write compact records, sorted for a deterministic file.
    skills = sorted(b.skills.values(), key=lambda s: norm(s.name))
    ids: dict[str, str] = {}
    used: set[str] = set()
    for s in skills:
        base = slug(s.name)
        sid, n = base, 2
        while sid in used:
            sid, n = f"{base}-{n}", n + 1
        used.add(sid)
        ids[norm(s.name)] = sid
    categories = sorted({s.category for s in skills if s.category})
    cat_index = {c: i for i, c in enumerate(categories)}

    skill_records: list[dict[str, object]] = []
    surface_keys: list[str] = []
    surface_skill: list[int] = []
    surface_index: dict[str, int] = {}
    surface_case_forms: dict[str, list[str]] = {}
    for s in skills:
        aliases = sorted(a for a in s.aliases if a != norm(s.name))
        ctx = sorted({surface for a, surface in s.aliases.items()
                      if len(a.split()) == 1 and (a in ALWAYS_CONTEXT or (len(a) <= 2 and a.isalpha())
                                                  or (b.is_general_word(a) and a not in KEEP_SINGLE
                                                      and s.group in ("tool", "certification")))})
        rec: dict[str, object] = {"id": ids[norm(s.name)], "name": s.name, "group": s.group}
        # Matchable surfaces, first owner wins, in the engine's index order; words that are also ordinary
        # English keep the spellings (as written, upper, title case) that count in a skill context.
        ctx_by_key: dict[str, set[str]] = defaultdict(set)
        for form in ctx:
            ctx_by_key[norm(form)].update((form, form.upper(), form.title()))
        # A skill added by add_unlabelled is not found by its name.
        named = [norm(s.name)] if norm(s.name) in s.aliases else []
        for key in (*named, *aliases):
            if key in surface_index:
                continue
            surface_index[key] = len(surface_keys)
            if ctx_by_key.get(key):
                surface_case_forms[str(len(surface_keys))] = sorted(ctx_by_key[key])
            surface_keys.append(key)
            surface_skill.append(len(skill_records))
        rel = sorted(ids[norm(r)] for r in s.related if norm(r) in ids and ids[norm(r)] != rec["id"])
        if rel:
            rec["rel"] = rel
        if s.category:
            rec["cat"] = cat_index[s.category]
        if s.popularity:
            rec["pop"] = s.popularity
        if s.onet_occupations:
            rec["occ"] = s.onet_occupations
        skill_records.append(rec)

    occ_records = []
    ordered = sorted(occupations.values(), key=lambda o: o.id)
    for occ in ordered:
        orec: dict[str, object] = {"id": occ.id, "name": occ.name, "sector": occ.sector}
        if occ.related:
            orec["rel"] = occ.related
        occ_records.append(orec)
    # Titles as (title, occupation index) pairs in priority order: the engine maps a title to its first
    # owner.  An occupation owns its own name first ("interior designer" is 27-1025 Interior Designers, not
    # an alternate title of Architects), then its singular, then alternate titles (O*NET codes sort first).
    title_pairs: list[tuple[str, int]] = [(norm(o.name), i) for i, o in enumerate(ordered)]
    title_pairs += [(singular_title(norm(o.name)), i) for i, o in enumerate(ordered)
                    if singular_title(norm(o.name)) != norm(o.name)]
    title_pairs += [(t, i) for i, o in enumerate(ordered) for t in sorted(o.titles) if t != norm(o.name)]

    n_alias = sum(len(s.aliases) - 1 for s in skills)
    n_titles = sum(len(o.titles) for o in occupations.values())
    print(f"skills: {len(skill_records)} ({n_alias} aliases), occupations: {len(occ_records)} "
          f"(+{esco_added} from ESCO), titles: {n_titles}; dropped labels: {dict(sorted(b.dropped.items()))}",
          file=sys.stderr)
    return {
        "format": FORMAT_VERSION,
        "sources": ["ESCO v1.1.1 (CC BY 4.0)", "O*NET 29.2 (CC BY 4.0)", "Stack Overflow tags (CC BY-SA)"],
        "sectors": sorted(set(SOC_MAJOR.values()) | {"Other"}),
        "categories": categories,
        "skills": skill_records,
        "surface_keys": surface_keys,
        "surface_skill": surface_skill,
        "surface_case_forms": surface_case_forms,
        # Spans that begin a longer surface (up to one of its token ends): the matcher scans on past them.
        "surface_prefixes": sorted({p for key in surface_keys for p in surface_prefixes(key)}),
        "occupations": occ_records,
        "titles": [t for t, _i in title_pairs],
        "title_occupation": [i for _t, i in title_pairs],
        # Single-word titles too ambiguous to map to one occupation ("consultant", "teacher"): still a title.
        "generic_titles": sorted(generic_titles),
        # In how many occupations' titles each title word occurs (>= 2 only): the engine's title-word rarity.
        "title_word_df": title_word_df(occupations.values()),
        # Last words of known titles ("manager", "consultant"): a CV headline ending in one is a job title.
        "title_heads": sorted({t.split()[-1] for o in occupations.values() for t in [norm(o.name), *o.titles]
                               if re.fullmatch(r"[a-z][a-z-]+", t.split()[-1])} | generic_titles),
        "onet_occupations_with_tech": onet_occupations_with_tech,
        # Term profiles of the O*NET occupations (inverted index): what a CV's work history reads like.
        "occupation_profiles": occupation_profiles(onet, {o.id: i for i, o in enumerate(ordered)}),
    }


NOTICE = """\
cvmatch matcher taxonomy (taxonomy.json.gz)
===========================================

This file is compiled by tools/build_taxonomy.py from the following open data.  Labels were filtered,
normalised and merged; curated aliases were added by the cvmatch project.

ESCO - European Skills, Competences, Qualifications and Occupations, v1.1.1
  (c) European Union, 2017-2024, https://esco.ec.europa.eu/
  Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
  https://creativecommons.org/licenses/by/4.0/
  Obtained via the Tabiya Open Dataset (github.com/tabiya-tech/tabiya-open-dataset, CC BY 4.0) and
  github.com/Nam-Aniket/northstar (esco/skills_en.csv).  Modified: labels pruned, merged with other sources.

O*NET 29.2 Database
  This data includes information from the O*NET 29.2 Database by the U.S. Department of Labor,
  Employment and Training Administration (USDOL/ETA), used under the CC BY 4.0 license.
  O*NET(R) is a trademark of USDOL/ETA.  cvmatch has modified all or some of this information;
  USDOL/ETA has not approved, endorsed, or tested these modifications.
  Files used: Occupation Data, Alternate Titles, Sample of Reported Titles, Technology Skills (product
  names, and how many occupations list each: the skill rarity weight), Related Occupations, Task
  Statements (to learn which words are ordinary English).  Occupation term profiles (weighted words of
  each occupation's title, alternate and reported titles, description, tasks and technology names,
  pruned to the strongest terms) are derived from the same files.

Stack Overflow tags
  Tag names and question counts from the Stack Exchange Data Explorer (data.stackexchange.com),
  Stack Overflow, licensed under Creative Commons Attribution-ShareAlike (CC BY-SA 4.0),
  https://creativecommons.org/licenses/by-sa/4.0/ .  Used for technical vocabulary and popularity.

Licence of the compiled file
  taxonomy.json.gz is an adapted database of the sources above. Because it includes material from
  Stack Overflow under CC BY-SA 4.0, the compiled file as a whole is distributed under the Creative
  Commons Attribution-ShareAlike 4.0 International licence (CC BY-SA 4.0), with the attributions above.
  The cvmatch source code is not a derivative of it and is not affected by that licence.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared reference data folder")
    ap.add_argument("--out", type=Path, required=True, help="output .json.gz")
    args = ap.parse_args(argv)
    tax = build(args.data)
    payload = json.dumps(tax, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(payload).hexdigest()[:16]
    tax["digest"] = digest
    payload = json.dumps(tax, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # mtime=0 and no filename: the compiled file is byte-reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(payload)
    args.out.write_bytes(buf.getvalue())
    (args.out.parent / "NOTICE").write_text(NOTICE, encoding="utf-8")
    print(f"wrote {args.out} ({len(buf.getvalue()) / 1e6:.2f} MB gz, digest {digest})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
