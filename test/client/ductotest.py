"""test/client/ductotest.py: small shared helpers for the client tests (run with /usr/bin/python3).

Connects to the cluster named by the usual libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE;
`eval "$(scripts/cluster.sh env)"` sets them) and turns a failed expectation into one clear message.
"""

import sys

import psycopg


class Mismatch(AssertionError):
    """A test expectation that did not hold; the message says what was expected and what came back."""


def connect(autocommit=True, dbname=None):
    """A psycopg 3 connection from the PG* environment variables (an empty conninfo reads them);
    dbname, when given, overrides PGDATABASE."""
    extra = {"dbname": dbname} if dbname else {}
    return psycopg.connect("", autocommit=autocommit, **extra)


def scratch_database(name):
    """Creates the database name afresh (dropping a leftover one) with the ducto extension and returns
    an autocommit connection to it. Needs a role that may create databases (the test cluster's superuser)."""
    with connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    conn = connect(dbname=name)
    conn.execute("CREATE EXTENSION ducto")
    return conn


def drop_database(name):
    with connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def sqlstate_of(conn, sql, params=None):
    """Runs sql, which must fail, and returns the SQLSTATE and message of its error (None, None if it succeeded)."""
    try:
        conn.execute(sql, params)
    except psycopg.Error as error:
        diag = error.diag
        return diag.sqlstate, diag.message_primary
    return None, None


def fail(message):
    """Stops the test with a clear message on stderr and a non-zero exit status."""
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)
