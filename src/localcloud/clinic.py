"""The demo's source database: a small clinic (schema ``clinic`` in the database ``clinic``).

All rows are generated server-side (``generate_series`` and integer hashing of the row number),
so the same ``patients``/``seed`` always give the same data, and loading takes well under a
second for the default size.
"""

from __future__ import annotations

from typing import Any

DATABASE = "clinic"
SCHEMA = "clinic"
TABLES = ("practitioners", "patients", "appointments", "prescriptions")

# h(i) below: a deterministic pseudo-random non-negative integer from a row number and the seed.
_SCHEMA_SQL = [
    "DROP SCHEMA IF EXISTS clinic CASCADE",
    "CREATE SCHEMA clinic",
    """
    CREATE FUNCTION clinic.h(i bigint, salt bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN abs((i * 2654435761 + salt * 40503 + 12345) # ((i + salt) * 97)) % 2147483647
    """,
    """
    CREATE TABLE clinic.practitioners (
        practitioner_id integer PRIMARY KEY,
        full_name       text NOT NULL,
        specialty       text NOT NULL,
        license_no      text NOT NULL UNIQUE,
        created_at      timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE clinic.patients (
        patient_id  bigint PRIMARY KEY,
        mrn         text NOT NULL UNIQUE,
        full_name   text NOT NULL,
        birth_date  date NOT NULL,
        email       text,
        created_at  timestamptz NOT NULL,
        CONSTRAINT patients_birth_date_sane
            CHECK (birth_date BETWEEN DATE '1900-01-01' AND DATE '2030-01-01')
    )
    """,
    """
    CREATE TABLE clinic.appointments (
        appointment_id   bigint PRIMARY KEY,
        patient_id       bigint NOT NULL REFERENCES clinic.patients (patient_id),
        practitioner_id  integer NOT NULL REFERENCES clinic.practitioners (practitioner_id),
        scheduled_at     timestamptz NOT NULL,
        duration_minutes integer NOT NULL
            CONSTRAINT appointments_duration_range CHECK (duration_minutes BETWEEN 5 AND 240),
        status           text NOT NULL
            CONSTRAINT appointments_status_known
            CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no_show')),
        created_at       timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE clinic.prescriptions (
        prescription_id bigint PRIMARY KEY,
        appointment_id  bigint NOT NULL REFERENCES clinic.appointments (appointment_id),
        patient_id      bigint NOT NULL REFERENCES clinic.patients (patient_id),
        drug            text NOT NULL,
        dose_mg         numeric(8, 2) NOT NULL CONSTRAINT prescriptions_dose_positive
            CHECK (dose_mg > 0),
        prescribed_at   timestamptz NOT NULL,
        created_at      timestamptz NOT NULL
    )
    """,
    "CREATE INDEX appointments_patient_scheduled_idx"
    " ON clinic.appointments (patient_id, scheduled_at)",
    "CREATE INDEX appointments_practitioner_idx ON clinic.appointments (practitioner_id)",
    "CREATE INDEX prescriptions_patient_idx ON clinic.prescriptions (patient_id, prescribed_at)",
    "CREATE INDEX patients_created_at_idx ON clinic.patients (created_at)",
]

_FILL_SQL = [
    # practitioners: one per 40 patients, at least 5
    """
    INSERT INTO clinic.practitioners
    SELECT i,
           (ARRAY['Ada','Grace','Alan','Marie','Louis','Rosalind','Carl','Emmy'])
               [1 + clinic.h(i, :seed) % 8]
             || ' ' ||
           (ARRAY['Lovelace','Hopper','Turing','Curie','Pasteur','Franklin','Gauss','Noether'])
               [1 + clinic.h(i, :seed + 1) % 8],
           (ARRAY['general practice','cardiology','dermatology','pediatrics','oncology'])
               [1 + clinic.h(i, :seed + 2) % 5],
           'LIC-' || lpad(i::text, 6, '0'),
           TIMESTAMPTZ '2019-01-01 08:00:00+00' + (clinic.h(i, :seed + 3) % 1000) * INTERVAL '1 day'
    FROM generate_series(1, greatest(5, :patients / 40)) AS i
    """,
    """
    INSERT INTO clinic.patients
    SELECT i,
           'MRN' || lpad(i::text, 8, '0'),
           (ARRAY['Noah','Emma','Liam','Olivia','Mia','Lucas','Zoe','Ethan','Ava','Leo'])
               [1 + clinic.h(i, :seed + 4) % 10]
             || ' ' ||
           (ARRAY['Smith','Garcia','Nguyen','Okafor','Kowalski','Silva','Haddad','Tanaka'])
               [1 + clinic.h(i, :seed + 5) % 8],
           DATE '1935-01-01' + (clinic.h(i, :seed + 6) % 30000)::integer,
           CASE WHEN clinic.h(i, :seed + 7) % 10 = 0 THEN NULL
                ELSE 'patient' || i || '@example.org' END,
           TIMESTAMPTZ '2020-01-01 00:00:00+00' + (clinic.h(i, :seed + 8) % 1400) * INTERVAL '1 day'
               + (clinic.h(i, :seed + 9) % 86400) * INTERVAL '1 second'
    FROM generate_series(1, :patients) AS i
    """,
    # three appointments per patient
    """
    INSERT INTO clinic.appointments
    SELECT a,
           1 + (a - 1) / 3,
           1 + clinic.h(a, :seed + 10) % greatest(5, :patients / 40),
           TIMESTAMPTZ '2023-01-01 08:00:00+00' + (clinic.h(a, :seed + 11) % 700) * INTERVAL '1 day'
               + (clinic.h(a, :seed + 12) % 20) * INTERVAL '30 minutes',
           (ARRAY[15, 20, 30, 45, 60])[1 + clinic.h(a, :seed + 13) % 5],
           (ARRAY['completed','completed','completed','scheduled','cancelled','no_show'])
               [1 + clinic.h(a, :seed + 14) % 6],
           TIMESTAMPTZ '2022-12-01 00:00:00+00' + (clinic.h(a, :seed + 15) % 700) * INTERVAL '1 day'
    FROM generate_series(1, :patients * 3) AS a
    """,
    # a prescription for about half of the completed appointments
    """
    INSERT INTO clinic.prescriptions
    SELECT row_number() OVER (ORDER BY appointment_id),
           appointment_id,
           patient_id,
           (ARRAY['amoxicillin','ibuprofen','metformin','lisinopril','atorvastatin','omeprazole'])
               [1 + clinic.h(appointment_id, :seed + 16) % 6],
           (5 + clinic.h(appointment_id, :seed + 17) % 995)::numeric / 2,
           scheduled_at + INTERVAL '20 minutes',
           scheduled_at + INTERVAL '25 minutes'
    FROM clinic.appointments
    WHERE status = 'completed' AND clinic.h(appointment_id, :seed + 18) % 2 = 0
    """,
]


def _count(conn: Any, table: str) -> int:
    return int(conn.run(f"SELECT count(*) FROM {SCHEMA}.{table}")[0][0])


def load_clinic(
    conn: Any, *, patients: int = 2000, seed: int = 7, owner: str | None = None
) -> dict[str, int]:
    """(Re)create schema ``clinic`` in the connected database and fill it; return row counts.

    ``conn`` is a ``pg8000.native.Connection`` allowed to create schemas (the superuser or the
    master user). ``owner``, if given, becomes the owner of the schema and its tables.
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    conn.run("BEGIN")
    try:
        for statement in _SCHEMA_SQL:
            conn.run(statement)
        for statement in _FILL_SQL:
            conn.run(statement, patients=int(patients), seed=int(seed))
        if owner is not None:
            _transfer_ownership(conn, owner)
        conn.run("COMMIT")
    except Exception:
        conn.run("ROLLBACK")
        raise
    conn.run(
        f"ANALYZE {SCHEMA}.practitioners, {SCHEMA}.patients, "
        f"{SCHEMA}.appointments, {SCHEMA}.prescriptions"
    )
    return {table: _count(conn, table) for table in TABLES}


def _transfer_ownership(conn: Any, owner: str) -> None:
    """Give ``owner`` the clinic schema and everything in it (no-op if there is no schema)."""
    exists = conn.run("SELECT 1 FROM pg_namespace WHERE nspname = :s", s=SCHEMA)
    if not exists:
        return
    statements = [
        row[0]
        for row in conn.run(
            """
            SELECT format('ALTER SCHEMA %I OWNER TO %I', :s::text, :o::text)
            UNION ALL
            SELECT format('ALTER TABLE %I.%I OWNER TO %I', :s::text, c.relname, :o::text)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = :s::text AND c.relkind = 'r'
            UNION ALL
            SELECT format('ALTER FUNCTION %I.%I(bigint, bigint) OWNER TO %I',
                          :s::text, p.proname, :o::text)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = :s::text
            """,
            s=SCHEMA,
            o=owner,
        )
    ]
    for statement in statements:
        conn.run(statement)


def create_master_user(admin_conn: Any, username: str, password: str) -> None:
    """Create (or reset) the RDS "master user": LOGIN CREATEDB CREATEROLE, not superuser.

    Grants it the connected database and, if schema ``clinic`` exists there, ownership of it.
    """
    if not username or not password:
        raise ValueError("username and password are required")
    exists = admin_conn.run("SELECT 1 FROM pg_roles WHERE rolname = :u", u=username)
    verb = "ALTER" if exists else "CREATE"
    # utility statements take no bind parameters: let the server quote (format %I / %L)
    statement = admin_conn.run(
        f"SELECT format('{verb} ROLE %I WITH LOGIN CREATEDB CREATEROLE PASSWORD %L',"
        " :u::text, :p::text)",
        u=username,
        p=password,
    )[0][0]
    admin_conn.run(statement)
    grant = admin_conn.run(
        "SELECT format('GRANT ALL PRIVILEGES ON DATABASE %I TO %I', current_database(), :u::text)",
        u=username,
    )[0][0]
    admin_conn.run(grant)
    _transfer_ownership(admin_conn, username)
