"""The vocabularies leadml starts from: the default values of :class:`leadml.config.Settings` that
are word lists rather than choices (raw event names by buying stage, CRM stage spellings, e-mail
domains, job-title words, regions, spreadsheet placeholders, post-outcome column words). Each can
be replaced or extended in a settings file; the keys are named beside each list."""

#: ``data.event_types``: the canonical event types of each buying stage.
EVENT_TYPES_BY_STAGE: dict[str, tuple[str, ...]] = {
    "awareness": (
        "page_view",
        "blog_view",
        "newsletter_signup",
        "email_open",
        "ad_click",
        "social_engagement",
    ),
    "consideration": (
        "email_click",
        "content_download",
        "case_study_view",
        "webinar_registration",
        "webinar_attended",
        "pricing_page_view",
        "product_page_view",
    ),
    "decision": ("demo_request", "contact_request", "trial_signup", "consultation_request"),
    "none": ("unsubscribe", "email_bounce"),
}

#: ``data.stage_aliases``: how CRMs spell the lifecycle stages (any case).
STAGE_ALIASES: dict[str, str] = {
    "marketing qualified": "mql",
    "sales accepted": "sal",
    "sales rejected": "srl",
    "sales qualified": "sql",
    "closed won": "customer",
    "closed lost": "lost",
}

#: ``domains.free_mail``: free e-mail providers (a lead with one gives no company).
FREE_MAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "aol.com",
    "icloud.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
)

#: ``domains.student_suffixes``: a domain ending in one of these belongs to a student.
STUDENT_SUFFIXES: tuple[str, ...] = (".edu", ".ac.uk", ".edu.au", ".ac.in", ".student.com")

#: ``attributes.seniority``: words of a job title that place it at a level; the first level
#: that matches wins, so "vice president" is tried before "president".
SENIORITY_WORDS: dict[str, tuple[str, ...]] = {
    "student": ("student", "intern", "trainee", "apprentice", "graduate assistant"),
    "vp": ("vp", "vice president", "svp", "evp"),
    "c_level": (
        "chief",
        "ceo",
        "cto",
        "cfo",
        "cmo",
        "coo",
        "cio",
        "ciso",
        "cro",
        "founder",
        "co-founder",
        "owner",
        "president",
        "partner",
    ),
    "director": ("director", "head of", "head"),
    "manager": ("manager", "lead", "supervisor", "principal"),
    "individual_contributor": (
        "engineer",
        "developer",
        "analyst",
        "specialist",
        "coordinator",
        "associate",
        "consultant",
        "designer",
        "representative",
        "administrator",
        "assistant",
        "accountant",
        "architect",
        "scientist",
        "executive",
        "officer",
        "recruiter",
        "strategist",
        "writer",
        "buyer",
    ),
}

#: ``attributes.department``: words of a job title that place it in a department.
DEPARTMENT_WORDS: dict[str, tuple[str, ...]] = {
    "education": ("student", "intern", "professor", "teacher", "lecturer", "researcher"),
    "marketing": (
        "marketing",
        "cmo",
        "brand",
        "growth",
        "demand gen",
        "demand generation",
        "content",
        "seo",
        "communications",
        "campaign",
    ),
    "sales": (
        "sales",
        "cro",
        "account executive",
        "business development",
        "bdr",
        "sdr",
        "revenue",
        "account manager",
    ),
    "engineering": (
        "engineer",
        "engineering",
        "developer",
        "software",
        "devops",
        "cto",
        "architect",
        "data scientist",
        "product",
    ),
    "it": (
        "it",
        "information technology",
        "cio",
        "ciso",
        "systems",
        "infrastructure",
        "security",
        "network",
        "database",
    ),
    "finance": ("finance", "financial", "cfo", "accounting", "accountant", "controller"),
    "operations": ("operations", "coo", "supply chain", "logistics", "procurement", "buyer"),
    "hr": ("hr", "human resources", "people", "talent", "recruiter", "recruiting"),
    "executive": (
        "ceo",
        "founder",
        "co-founder",
        "owner",
        "president",
        "managing director",
        "general manager",
        "partner",
    ),
}

#: ``attributes.regions``: ISO country codes of each region.
REGIONS: dict[str, tuple[str, ...]] = {
    "north_america": ("US", "CA"),
    "latin_america": ("MX", "BR", "AR", "CL", "CO", "PE"),
    "europe": (
        "GB",
        "DE",
        "FR",
        "NL",
        "ES",
        "IT",
        "SE",
        "DK",
        "NO",
        "FI",
        "IE",
        "BE",
        "CH",
        "AT",
        "PL",
        "PT",
        "CZ",
    ),
    "middle_east_africa": ("AE", "SA", "IL", "ZA", "NG", "EG", "KE"),
    "asia_pacific": ("IN", "JP", "AU", "NZ", "SG", "CN", "KR", "HK", "ID", "PH", "MY"),
}

#: ``flat.placeholders``: form defaults and spreadsheet markers that mean "no answer", compared
#: ignoring case and surrounding spaces (empty strings are always missing).
NO_ANSWER_PLACEHOLDERS: tuple[str, ...] = (
    "Select",
    "N/A",
    "NA",
    "#N/A",
    "null",
    "None",
    "nan",
    "-",
    "--",
    "?",
)

#: ``leakage.post_outcome_names``: words of column names usually filled in after contact or after
#: the outcome (a sales status or stage, tags, a lead quality set by a rep, deal and call fields),
#: and "last"/"latest": in an export, such fields describe the lead when it was exported, which for
#: old leads is after they converted or not.
POST_OUTCOME_WORDS: tuple[str, ...] = (
    "status",
    "stage",
    "tag",
    "quality",
    "closed",
    "won",
    "lost",
    "duration",
    "outcome",
    "disposition",
    "last",
    "latest",
)
