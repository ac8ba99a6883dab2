"""source_config_json validation and the SELECT-only check (pure, no I/O)."""

from __future__ import annotations

import json

import pytest

from cvmatch.ingest.sources import (
    DatabaseConfig,
    DatabaseType,
    DriveConfig,
    S3Config,
    SourceError,
    SourceFailure,
    parse_source_config,
    parse_stored_credential,
    scrub,
)
from cvmatch.ingest.sources.sql import QueryRejected, check_select_only
from cvmatch.platform.errors import DomainError

SECRET_DSN = "postgresql://hr_user:S3cr3t-P%40ss@db.example.com:5432/ats"


def _bad(input_type: str, cfg: object, field: str) -> DomainError:
    raw = cfg if isinstance(cfg, str) else json.dumps(cfg)
    with pytest.raises(DomainError) as info:
        parse_source_config(input_type, raw)
    err = info.value
    assert err.reason == "INVALID_INPUT" and err.http_status == 400
    assert [v.field for v in err.violations] == [field], err
    return err


def test_s3_config_parses_with_aliases_and_s3_url():
    cfg = parse_source_config("AWS_S3", json.dumps({"bucket": "s3://cv-bucket/hr/2024/", "region": "eu-west-1"}))
    assert cfg == S3Config(bucket="cv-bucket", prefix="hr/2024/", region="eu-west-1")
    cfg = parse_source_config(
        "aws_s3",
        json.dumps({"bucket_name": "cv-bucket", "credential_name": "hr-s3", "endpoint_url": "http://127.0.0.1:9000/"}),
    )
    assert isinstance(cfg, S3Config)
    assert (cfg.credential_name, cfg.endpoint_url) == ("hr-s3", "http://127.0.0.1:9000")


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        ({}, "source_config_json.bucket"),
        ({"bucket": "Not_A_Bucket!"}, "source_config_json.bucket"),
        ({"bucket": "cvs", "region": "EU WEST"}, "source_config_json.region"),
        ({"bucket": "cvs", "endpoint_url": "ftp://host"}, "source_config_json.endpoint_url"),
        ({"bucket": "cvs", "endpoint_url": "https://user:pw@host"}, "source_config_json.endpoint_url"),
        ({"bucket": "cvs", "aws_secret_access_key": "abc"}, "source_config_json.aws_secret_access_key"),
        ({"bucket": "cvs", "bucket_nme": "x"}, "source_config_json.bucket_nme"),
        ({"bucket": "cvs", "recursive": "yes"}, "source_config_json.recursive"),
    ],
)
def test_s3_config_errors_name_the_field(cfg, field):
    _bad("AWS_S3", cfg, field)


def test_drive_config_accepts_folder_url_and_keeps_token_secret():
    token = "ya29.very-secret-token"
    cfg = parse_source_config(
        "GOOGLE_DRIVE",
        json.dumps(
            {
                "folder_id": "https://drive.google.com/drive/folders/1AbC_d-E?usp=sharing",
                "access_token": token,
                "recursive": True,
            }
        ),
    )
    assert isinstance(cfg, DriveConfig)
    assert cfg.folder_id == "1AbC_d-E" and cfg.recursive
    assert cfg.access_token is not None and cfg.access_token.reveal() == token
    assert token not in repr(cfg) and token not in json.dumps(cfg.storable())


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        ({"access_token": "t"}, "source_config_json.folder_id"),
        ({"folder_id": "abc"}, "source_config_json.access_token"),
        ({"folder_id": "abc", "access_token": "t", "credential": "sa"}, "source_config_json.credential"),
        ({"folder_id": "a'b", "access_token": "t"}, "source_config_json.folder_id"),
    ],
)
def test_drive_config_errors_name_the_field(cfg, field):
    _bad("GOOGLE_DRIVE", cfg, field)


def test_database_config_seed_example_parses_and_hides_the_connection_string():
    # The example of the SkillMatchIQ documentation, verbatim apart from the host.
    raw = json.dumps(
        {
            "type": "postgresql",
            "connection_string": SECRET_DSN,
            "query": "SELECT id, name, resume_content FROM applicants WHERE position_id = 12345;",
        }
    )
    cfg = parse_source_config("DATABASE", raw)
    assert isinstance(cfg, DatabaseConfig) and cfg.type is DatabaseType.POSTGRESQL
    assert cfg.query.endswith("12345")  # trailing ';' removed
    for text in (repr(cfg), str(cfg), json.dumps(cfg.storable()), cfg.describe()):
        assert "S3cr3t" not in text and "hr_user" not in text and "db.example.com" not in text


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        ({"connection_string": SECRET_DSN, "query": "SELECT 1"}, "source_config_json.type"),
        ({"type": "oracle", "connection_string": SECRET_DSN, "query": "SELECT 1"}, "source_config_json.type"),
        ({"type": "postgresql", "query": "SELECT 1"}, "source_config_json.connection_string"),
        ({"type": "postgresql", "connection_string": SECRET_DSN}, "source_config_json.query"),
        (
            {"type": "postgresql", "connection_string": SECRET_DSN, "query": "DELETE FROM applicants"},
            "source_config_json.query",
        ),
        (
            {"type": "mysql", "connection_string": SECRET_DSN, "query": "SELECT 1"},
            "source_config_json.connection_string",
        ),
        (
            {"type": "postgresql", "connection_string": SECRET_DSN + "?host=/var/run/postgresql", "query": "SELECT 1"},
            "source_config_json.connection_string",
        ),
        (
            {"type": "postgresql", "connection_string": SECRET_DSN, "query": "SELECT 1", "columns": {"cv": "x"}},
            "source_config_json.columns.cv",
        ),
        (
            {"type": "postgresql", "connection_string": SECRET_DSN, "query": "SELECT 1", "columns": {"file": "pdf"}},
            "source_config_json.columns.filename",
        ),
        (
            {"type": "postgresql", "connection_string": SECRET_DSN, "query": "SELECT 1", "max_rows": 0},
            "source_config_json.max_rows",
        ),
    ],
)
def test_database_config_errors_name_the_field_and_never_echo_the_secret(cfg, field):
    err = _bad("DATABASE", cfg, field)
    assert "S3cr3t" not in err.message and "hr_user" not in err.message


def test_unknown_type_error_lists_expected_values():
    err = _bad(
        "DATABASE", {"type": "oracle", "connection_string": SECRET_DSN, "query": "SELECT 1"}, "source_config_json.type"
    )
    assert err.details["expected"] == "postgresql, mysql, sqlite"


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '{"bucket": ' + '"x" ' * 40_000 + "}"])
def test_malformed_json_is_invalid_input_on_the_whole_field(raw):
    _bad("AWS_S3", raw, "source_config_json")


def test_json_error_does_not_quote_the_document():
    err = _bad("DATABASE", '{"connection_string": "postgresql://u:S3cr3t@h/db" oops}', "source_config_json")
    assert "S3cr3t" not in err.message and "line 1" in err.message


def test_upload_input_types_are_not_sources():
    _bad("ZIP_FILE", {"bucket": "x"}, "input_type")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id, name, resume_text FROM applicants",
        "select * from a where note = 'drop table x; delete from y'",
        "WITH recent AS (SELECT * FROM applicants WHERE created > now() - interval '1 day') SELECT * FROM recent",
        "SELECT id, replace(cv, 'a', 'b') AS resume_text FROM t -- update me later",
        'SELECT $$; DELETE $$ AS s, "update" FROM t /* insert */;',
        "SELECT `into`, 'it''s' FROM t",
        "SELECT CAST(cv AS CHAR CHARACTER SET utf8mb4) AS resume_text, updated_at FROM t",
    ],
)
def test_select_only_accepts_read_queries(query):
    assert check_select_only(query)


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("DELETE FROM applicants", "starts with DELETE"),
        ("SELECT 1; DROP TABLE applicants", "several statements"),
        ("SELECT 1; SELECT 2", "several statements"),
        ("WITH gone AS (DELETE FROM applicants RETURNING *) SELECT * FROM gone", "DELETE"),
        ("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", "UPDATE"),
        ("SELECT * INTO backup FROM applicants", "INTO"),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO"),
        ("SELECT * FROM t FOR UPDATE", "UPDATE"),
        ("SELECT * FROM t FOR SHARE", "SHARE"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT LOAD_FILE('/etc/passwd')", "load_file"),
        ("SELECT set_config('default_transaction_read_only', 'off', true)", "set_config"),
        ("REPLACE INTO t VALUES (1)", "starts with REPLACE"),
        ("SELECT 'unterminated", "unterminated"),
        ("SELECT 1 /* open", "unterminated"),
        ("-- only a comment", "empty"),
        ("TABLE applicants", "starts with TABLE"),
        ("SELECT 1;\nSELECT 2;", "several statements"),
        ("select 'a\\'; delete from t; --'", "several statements"),
        ("select 'a\\''; delete from t; --'", "several statements"),
    ],
)
def test_select_only_rejects_anything_else(query, why):
    with pytest.raises(QueryRejected) as info:
        check_select_only(query)
    assert why.lower() in str(info.value).lower()


def test_scrub_removes_passwords_tokens_and_url_userinfo():
    message = (
        "connect to postgresql://hr_user:S3cr3t@db:5432/ats failed; password=S3cr3t; "
        "token ya29.secret-token seen; mysql://root@h/db"
    )
    clean = scrub(message, ["ya29.secret-token", "S3cr3t"])
    assert "S3cr3t" not in clean and "ya29.secret-token" not in clean and "hr_user" not in clean
    assert "root@" not in clean


def test_source_error_maps_to_invalid_input_and_413():
    err = SourceError("The bucket 'x' does not exist.", failure=SourceFailure.NOT_FOUND, source="aws_s3")
    d = err.to_domain_error()
    assert (d.http_status, d.reason, d.violations[0].field, d.details["source_error"]) == (
        400,
        "INVALID_INPUT",
        "source_config_json",
        "not_found",
    )
    too_many = SourceError("more", failure=SourceFailure.TOO_MANY_ITEMS, source="aws_s3").to_domain_error()
    assert too_many.http_status == 413 and too_many.reason == "PAYLOAD_TOO_LARGE"


def test_stored_credentials_parse_and_never_print_the_secret():
    aws = parse_stored_credential("aws", json.dumps({"aws_access_key_id": "AKIA1", "aws_secret_access_key": "zzTOPzz"}))
    assert "zzTOPzz" not in repr(aws)
    with pytest.raises(DomainError) as info:
        parse_stored_credential("google_service_account", json.dumps({"client_email": "a@b", "private_key": "nope"}))
    assert "nope" not in info.value.message


async def test_file_credential_store_resolves_by_account_and_kind(tmp_path):
    from cvmatch.ingest.sources import AwsCredentials, FileCredentialStore, resolve_credentials

    path = tmp_path / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "acct-1": {
                    "hr-bucket": {"kind": "aws", "secret": {"access_key_id": "AKIA1", "secret_access_key": "s1"}}
                },
                "*": {"shared": {"kind": "aws", "secret": {"access_key_id": "AKIA2", "secret_access_key": "s2"}}},
            }
        )
    )
    store = FileCredentialStore(path)
    s3 = parse_source_config("AWS_S3", json.dumps({"bucket": "cvs", "credential": "hr-bucket"}))
    creds = await resolve_credentials(s3, "acct-1", store)
    assert isinstance(creds, AwsCredentials) and creds.secret_access_key.reveal() == "s1"
    shared = parse_source_config("AWS_S3", json.dumps({"bucket": "cvs", "credential": "shared"}))
    assert isinstance(await resolve_credentials(shared, "acct-2", store), AwsCredentials)
    # Another account cannot use acct-1's credential; a Drive folder cannot use an AWS key.
    with pytest.raises(DomainError) as info:
        await resolve_credentials(s3, "acct-2", store)
    assert info.value.violations[0].field == "source_config_json.credential"
    drive = parse_source_config("GOOGLE_DRIVE", json.dumps({"folder_id": "abc", "credential": "shared"}))
    with pytest.raises(DomainError) as info:
        await resolve_credentials(drive, "acct-2", store)
    assert "not a Google service-account key" in info.value.message
    no_name = parse_source_config("AWS_S3", json.dumps({"bucket": "cvs"}))
    assert await resolve_credentials(no_name, "acct-1", None) is None


def test_restore_config_only_where_no_secret_is_needed():
    from cvmatch.ingest.sources import restore_config

    s3 = parse_source_config("AWS_S3", json.dumps({"bucket": "cvs", "prefix": "a/", "credential": "k"}))
    assert restore_config("aws_s3", json.loads(json.dumps(s3.storable()))) == s3
    sa = parse_source_config("GOOGLE_DRIVE", json.dumps({"folder_id": "abc", "credential": "sa", "recursive": True}))
    assert restore_config("google_drive", json.loads(json.dumps(sa.storable()))) == sa
    token = parse_source_config("GOOGLE_DRIVE", json.dumps({"folder_id": "abc", "access_token": "ya29.x"}))
    assert restore_config("google_drive", token.storable()) is None
    db = parse_source_config(
        "DATABASE", json.dumps({"type": "sqlite", "connection_string": "sqlite:///a.db", "query": "SELECT 1"})
    )
    assert restore_config("database", db.storable()) is None


def test_settings_from_env():
    from cvmatch.ingest.sources import SourceSettings
    from cvmatch.platform.settings import Env

    s = SourceSettings.from_env(
        Env(
            {
                "INGEST_SOURCE_SQLITE_DIRS": "/srv/a:/srv/b",
                "INGEST_SOURCE_DB_MAX_ROWS": "50",
                "INGEST_SOURCE_DRIVE_API_URL": "http://127.0.0.1:1/drive/v3/",
                "INGEST_SOURCE_S3_AMBIENT_CREDENTIALS": "false",
            }
        )
    )
    assert s.sqlite_dirs[1].name == "b" and s.db_max_rows == 50 and not s.s3_ambient_credentials
    assert s.drive_api_url == "http://127.0.0.1:1/drive/v3" and s.max_file_bytes == 5 * 1024 * 1024
