"""Who the leads are: names, e-mail and company domains, and job titles.

Every job title carries the (seniority, department) codes that a keyword rule, or a CRM's
enrichment, should read back from it (``SENIORITY_OF_TITLE``, ``DEPARTMENT_OF_TITLE``).

Examples
--------
>>> SENIORITY_OF_TITLE["VP of Marketing"], DEPARTMENT_OF_TITLE["vp of marketing"]
('vp', 'marketing')
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.synth.vocabulary import COUNTRY_TLD, DEPARTMENTS, SENIORITIES

FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com")
STUDENT_DOMAINS = ("lakeside.edu", "stateu.edu", "northfield.edu", "kingsbridge.ac.uk",
                   "westmoor.ac.uk", "harbourview.edu.au")  # fmt: skip
COMPETITORS = (("Rivalytics", "rivalytics.com"), ("LeadForge", "leadforge.io"),
               ("PipeWise", "pipewise.com"))  # fmt: skip
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Wei", "Priya", "Arjun", "Aisha", "Carlos", "Sofia",
    "Lukas", "Emma", "Hannah", "Yuki", "Olivia", "Noah", "Liam", "Mateo", "Chloe", "Fatima",
    "Ravi", "Anna", "Sven", "Isabel",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lee", "Patel", "Kumar", "Singh", "Chen", "Wang", "Mueller", "Schmidt", "Schneider", "Dubois",
    "Martin", "Rossi", "Tanaka", "Sato", "Silva", "Santos", "Nielsen", "Andersson", "O'Brien",
    "Murphy", "Walker", "Clark", "Novak",
)  # fmt: skip
# Company names are two words joined, e.g. "bluefield" (numbered when a name repeats).
_DOMAIN_A = (
    "north", "blue", "bright", "stone", "silver", "green", "red", "iron", "cloud", "summit",
    "harbor", "pioneer", "atlas", "vertex", "nova", "clear", "swift", "prime", "orbit", "maple",
    "cedar", "quantum", "lumen", "apex", "delta", "crest",
)  # fmt: skip
_DOMAIN_B = (
    "wind", "field", "bridge", "works", "labs", "data", "systems", "logic", "point", "path",
    "soft", "health", "bank", "foods", "motors", "energy", "media", "retail", "group", "partners",
    "tech", "dynamics", "line", "stack",
)  # fmt: skip


# Departments 0-6 as job titles spell them.
_DEPT_WORD = ("Marketing", "Sales", "Engineering", "IT", "Finance", "Operations", "People")


def _job_titles() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All job titles with the (seniority, department) codes a keyword rule should recover."""
    titles: list[tuple[str, int, int]] = []
    chiefs = {
        0: ["CMO", "Chief Marketing Officer"],
        1: ["CRO", "Chief Revenue Officer"],
        2: ["CTO", "Chief Technology Officer"],
        3: ["CIO", "Chief Information Officer"],
        4: ["CFO", "Chief Financial Officer"],
        5: ["COO", "Chief Operating Officer"],
        7: ["CEO", "Chief Executive Officer", "Founder & CEO", "Co-Founder & CEO"],
    }
    ic = {
        0: [
            "Marketing Specialist",
            "Marketing Coordinator",
            "Content Marketer",
            "SEO Specialist",
            "Marketing Analyst",
        ],
        1: [
            "Account Executive",
            "Sales Development Representative",
            "Sales Representative",
            "Business Development Representative",
        ],
        2: [
            "Software Engineer",
            "Senior Software Engineer",
            "Data Scientist",
            "Data Engineer",
            "DevOps Engineer",
        ],
        3: ["Systems Administrator", "IT Analyst", "IT Support Specialist"],
        4: ["Financial Analyst", "Accountant", "Senior Accountant"],
        5: ["Operations Analyst", "Project Coordinator", "Buyer", "Procurement Specialist"],
        6: ["Recruiter", "HR Generalist", "Talent Acquisition Specialist"],
    }
    managers = {
        0: [
            "Demand Generation Manager",
            "Digital Marketing Manager",
            "Marketing Operations Manager",
        ],
        1: ["Sales Manager", "Inside Sales Manager"],
        2: ["Engineering Manager"],
        3: ["IT Manager"],
        4: ["Finance Manager"],
        5: ["Operations Manager", "Procurement Manager"],
        6: ["HR Manager"],
    }
    for dept, names in chiefs.items():
        titles += [(t, 0, dept) for t in names]
    for dept, word in enumerate(_DEPT_WORD):
        titles += [
            (t, 1, dept) for t in (f"VP of {word}", f"Vice President, {word}", f"SVP {word}")
        ]
        titles += [
            (t, 2, dept)
            for t in (
                f"Director of {word}",
                f"{word} Director",
                f"Head of {word}",
                f"Senior Director, {word}",
            )
        ]
        titles += [
            (t, 3, dept)
            for t in (
                f"{word} Manager",
                f"Senior {word} Manager",
                f"{word} Team Lead",
                *managers[dept],
            )
        ]
        titles += [(t, 4, dept) for t in ic[dept]]
    titles += [("Head of Procurement", 2, 5), ("VP Procurement", 1, 5)]
    titles += [(t, 5, 8) for t in ("Student", "Graduate Student", "PhD Student", "MBA Candidate")]
    titles += [
        ("Marketing Intern", 5, 0),
        ("Software Engineering Intern", 5, 2),
        ("Sales Intern", 5, 1),
        ("Finance Intern", 5, 4),
    ]
    names, sen, dept = zip(*titles, strict=True)
    return list(names), np.array(sen), np.array(dept)


JOB_TITLES, TITLE_SENIORITY, TITLE_DEPARTMENT = _job_titles()


def _by_title(codes: np.ndarray, names: tuple[str, ...]) -> dict[str, str]:
    """What a CRM's enrichment reads from a title, in either spelling the leads table uses."""
    return {
        spelling: names[code]
        for title, code in zip(JOB_TITLES, codes, strict=True)
        for spelling in (title, title.lower())
    }


SENIORITY_OF_TITLE = _by_title(TITLE_SENIORITY, SENIORITIES)
DEPARTMENT_OF_TITLE = _by_title(TITLE_DEPARTMENT, DEPARTMENTS)


def company_domains(
    rng: np.random.Generator, country: np.ndarray, comp_rows: np.ndarray
) -> np.ndarray:
    """One e-mail domain per company (in its country's top-level domain); the competitors' rows
    get their own."""
    n = len(country)
    a = rng.integers(0, len(_DOMAIN_A), n)
    b = rng.integers(0, len(_DOMAIN_B), n)
    base = pd.Series(np.char.add(np.array(_DOMAIN_A)[a], np.array(_DOMAIN_B)[b]))
    # Number repeated names so that a domain identifies one company.
    dup = base.groupby(base).cumcount().to_numpy()
    names = np.where(
        dup > 0, np.char.add(base.to_numpy(dtype=str), dup.astype(str)), base.to_numpy(dtype=str)
    )
    domains = np.char.add(np.char.add(names, "."), np.array(COUNTRY_TLD)[country]).astype(object)
    domains[comp_rows] = [d for _, d in COMPETITORS]
    return domains


def pick_titles(rng: np.random.Generator, seniority: np.ndarray, dept: np.ndarray) -> np.ndarray:
    """A random title per (seniority, department); interns and students pick any of theirs."""
    key_title = np.where(TITLE_SENIORITY == 5, 5 * 16, TITLE_SENIORITY * 16 + TITLE_DEPARTMENT)
    order = np.argsort(key_title, kind="stable")
    keys, offsets, counts = np.unique(key_title[order], return_index=True, return_counts=True)
    key = np.where(seniority == 5, 5 * 16, seniority * 16 + dept)
    pos = np.searchsorted(keys, key)
    if not np.array_equal(keys[np.minimum(pos, len(keys) - 1)], key):
        raise AssertionError("a (seniority, department) pair has no job title")
    pick = offsets[pos] + (rng.random(len(key)) * counts[pos]).astype(np.int64)
    return order[pick]
