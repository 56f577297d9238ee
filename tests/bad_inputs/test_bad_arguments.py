"""Bad command-line arguments on a valid history: impossible dates, --out where nothing can be
written, folders that are not there. Each exits with its documented code, names the option and
the value, and writes nothing; dates are refused before any data is read."""

from __future__ import annotations

import pytest

NOW = "2026-01-01"
AS_OF = "2025-02-03"

# (id, arguments after the command with {data}, {out} and {missing} filled in, exit code,
#  fragments of the message)
CASES = [
    ("features_as_of_impossible", ["features", "--as-of", "2026-02-30", "--out", "{out}"], 3,
     ("--as-of '2026-02-30'", "day is out of range for month")),
    ("features_as_of_word", ["features", "--as-of", "soon", "--out", "{out}"], 3,
     ("--as-of 'soon'", "not a valid date")),
    ("features_as_of_empty", ["features", "--as-of", "", "--out", "{out}"], 3,
     ("--as-of ''", "not a date")),
    ("features_now_impossible", ["features", "--as-of", AS_OF, "--now", "2025-13-01",
                                 "--out", "{out}"], 3, ("--now '2025-13-01'", "month must be")),
    ("rules_as_of_impossible", ["rules", "--as-of", "2026-02-30", "--out", "{out}"], 3,
     ("--as-of '2026-02-30'",)),
    ("rules_as_of_word", ["rules", "--as-of", "tomorrow", "--out", "{out}"], 3,
     ("--as-of 'tomorrow'",)),
    ("trainset_end_word", ["trainset", "--end", "soon", "--out", "{out}"], 3,
     ("--end 'soon'",)),
    ("trainset_start_impossible", ["trainset", "--start", "2025-02-29", "--out", "{out}"], 3,
     ("--start '2025-02-29'", "day is out of range")),
    ("validate_now_impossible", ["validate", "--now", "2026-02-30"], 3, ("--now '2026-02-30'",)),
    ("summary_now_word", ["summary", "--now", "later"], 3, ("now 'later'",)),
    ("features_out_in_missing_folder", ["features", "--as-of", AS_OF, "--out",
                                        "{missing}/f.parquet"], 8,
     ("--out", "does not exist", "nowhere")),
    ("trainset_out_in_missing_folder", ["trainset", "--out", "{missing}/t.csv"], 8,
     ("does not exist", "nowhere")),
    ("rules_out_in_missing_folder", ["rules", "--as-of", AS_OF, "--out", "{missing}/r.csv.gz"],
     8, ("does not exist", "nowhere")),
    ("features_out_bad_suffix", ["features", "--as-of", AS_OF, "--out", "{out}.xlsx"], 8,
     ("must end in .parquet, .csv or .csv.gz", ".xlsx")),
    ("rules_out_bad_suffix", ["rules", "--as-of", AS_OF, "--out", "{out}.json"], 8,
     ("must end in .parquet, .csv or .csv.gz", ".json")),
    ("features_out_is_a_folder", ["features", "--as-of", AS_OF, "--out", "{data}"], 2,
     ("--out", "is a directory")),
    ("data_folder_missing", ["validate", "--data", "{missing}"], 2,
     ("--data", "does not exist")),
    ("data_is_a_file", ["validate", "--data", "{data}/leads.csv"], 2, ("--data", "is a file")),
]  # fmt: skip


@pytest.mark.parametrize(("args", "code", "expect"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_argument_is_refused_naming_it(args, code, expect, history, cli, nothing_written,
                                           tmp_path):  # fmt: skip
    data = history()
    out = tmp_path / "out.parquet"
    filled = [a.format(data=data, out=out, missing=tmp_path / "nowhere") for a in args]
    if "--data" not in filled:
        filled[1:1] = ["--data", str(data)]
    if "--now" not in filled:
        filled += ["--now", NOW]
    with nothing_written():
        exit_code, output = cli(*filled)
    assert exit_code == code, output
    for fragment in expect:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert not (tmp_path / "nowhere").exists()
