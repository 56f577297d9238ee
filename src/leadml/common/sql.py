"""SQL literals for the DuckDB queries leadml writes: values and names from settings, rules and
the data are quoted here, never pasted into SQL as they are."""


def sql_str(value: object) -> str:
    """A SQL string literal.

    Examples
    --------
    >>> sql_str("O'Brien")
    "'O''Brien'"
    """
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: object) -> str:
    """A SQL identifier (a column or table name), whatever characters it holds.

    Examples
    --------
    >>> print(sql_ident('a "b" c'))
    "a ""b"" c"
    """
    return '"' + str(name).replace('"', '""') + '"'
