"""`naftiko validate` on the 59 real capability files (imports resolve via tests/corpus/shared/).

Pinned: the rule ids (errors and warnings) each file reports, so any regression or new noise shows;
that a file has an error exactly when `naftiko run` would refuse it (every error is real, every
failure is caught); and that `--strict` rejects every file the official schema rejects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.check.runner import FileResult, check_file
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.yaml"))

# shared/corpus/SURVEY.md: the only files the official v1.0.0-alpha2 schema accepts.
STRICT_PASSING = {
    "naftiko-microsoft-outlook-sandbox__microsoft-outlook-calendar-api-consumes.yaml",
    "naftiko-slack-sandbox__slack-admin-api-consumes.yaml",
    "naftiko-youtube-sandbox__youtube-analytics-api-consumes.yaml",
}

# file -> rule ids of its errors and warnings (notes are dialect rewrites, not findings).
# The files with errors, and why each is real (`run` refuses all of them):
#   ec2-auto-scaling: invalid YAML (unescaped quotes at 96:202); -management imports that file.
#   amazon-fsx: the consumes entry is `{namespace, ref: <file>}` with no baseUri: nothing to call.
#   amplitude: GET /v1/users and GET /v1/groups are each declared twice (the get-one operations
#     have no id in their path), so one of each pair could never be reached.
#   apache-orc, upbound-platform: tools and routes call operations their consumes do not define.
#   mastercard-loyalty: oauth1 request signing, which this runtime does not support.
# Credentials and base URIs naming variables no bind declares (amplitude, avatax, betsolutions,
# fullstory-server-users, sap) read the environment instead: `bind-implicit`. OpenAPI server
# variables in a base URI (oracle-goldengate: `{region}`, `{ggsa-host}`) need `--base-uri` at run time.
EXPECTED: dict[str, list[str]] = {
    "advance-auto-parts__auto-parts-shopping.yaml": ["bind-unused"],
    "albato__ipaas-automation.yaml": [],
    "amazon-ec2-auto-scaling__ec2-auto-scaling-management.yaml": ["bind-unused", "import-failed", "yaml-syntax"],
    "amazon-ec2-auto-scaling__ec2-auto-scaling.yaml": ["yaml-syntax"],
    "amazon-fsx__amazon-fsx-file-system-management.yaml": ["bind-unused", "required-field", "unsupported-feature"],
    "amazon-license-manager__amazon-license-manager-workflow.yaml": ["bind-unused"],
    "amplitude__amplitude-identity-and-privacy.yaml": ["bind-implicit", "duplicate-route"],
    "apache-oozie__apache-oozie-workflow-orchestration.yaml": ["bind-unused"],
    "apache-orc__orc-workflow.yaml": ["bind-unused", "call-unresolved"],
    "avalara__avalara-cross-border-compliance.yaml": [],
    "avalara__avatax-apis-accounts.yaml": ["bind-implicit", "bind-unused", "duplicate-operation", "with-unknown-key"],
    "betsolutions__casino-platform.yaml": ["bind-implicit", "bind-unused"],
    "bureau-of-economic-analysis__bureau-of-economic-analysis-capability.yaml": [],
    "chatgpt__chatgpt-capability.yaml": [],
    "fluentd__fluentd-capability.yaml": [],
    "fullstory__fullstory-capability.yaml": [],
    "fullstory__server-users.yaml": ["bind-implicit", "bind-unused"],
    "google-cloud-container-registry__google-cloud-container-registry-capability.yaml": [],
    "mastercard__account-to-account-commerce-for-creditor-service-providers-agreement.yaml": ["bind-unused"],
    "mastercard__loyalty-and-offers.yaml": ["unsupported-auth"],
    "microsoft-graph__admin-edge-browser.yaml": ["bind-unused"],
    "microsoft-graph__applications-applications-synchronization.yaml": ["bind-unused"],
    "mobileapi-dev__ai-device-recommendation.yaml": ["no-exposes", "unsupported-feature"],
    "naftiko-microsoft-365-copilot-sandbox__microsoft-365-copilot-apis-consumes.yaml": [],
    "naftiko-microsoft-365-copilot-sandbox__microsoft-365-copilot-sandbox.yaml": [],
    "naftiko-microsoft-outlook-sandbox__microsoft-outlook-calendar-api-consumes.yaml": [],
    "naftiko-microsoft-outlook-sandbox__microsoft-outlook-sandbox.yaml": [],
    "naftiko-slack-sandbox__slack-admin-api-consumes.yaml": [],
    "naftiko-slack-sandbox__slack-sandbox.yaml": [],
    "naftiko-youtube-sandbox__youtube-analytics-api-consumes.yaml": [],
    "naftiko-youtube-sandbox__youtube-sandbox.yaml": [],
    "oracle-goldengate__cloud-management.yaml": ["baseuri-server-variables"],
    "orion__fhir-encounter.yaml": [],
    "orion__orion-capability.yaml": [],
    "pixelixe__pixelixe-capability.yaml": [],
    "pixelixe__pixelixe-graphic.yaml": [],
    "plaid__accounts--plaid.yaml": ["bind-unused"],
    "plaid__plaid-capability.yaml": [],
    "qualcomm__qualcomm-capability.yaml": [],
    "rackspace-technology__cloud-account-operations.yaml": [],
    "sap__enterprise-business-operations.yaml": ["bind-implicit", "bind-unused"],
    "shift4-payments__subscription-billing.yaml": [],
    "snowflake__compute-and-services.yaml": ["unknown-key"],  # `tools` directly under a skill exposure (belongs under `skills`)
    "snowflake__cortex-ai.yaml": ["unknown-key"],  # the same
    "spring-boot-3__application-observability.yaml": [],
    "telegram__bot-messaging.yaml": [],
    "toast__restaurant-operations.yaml": ["bind-unused"],
    "tribune-media__entertainment-discovery.yaml": [],
    "truto__unified-integrations.yaml": ["with-unknown-key"],
    "upbound__platform-engineering.yaml": ["call-unresolved"],
    "upbound__upbound-robots.yaml": [],
    "vapi-ai__analytics-analytics.yaml": [],
    "vapi-ai__sessions-sessions.yaml": ["duplicate-parameter", "yaml-duplicate-key"],
    "veryfi__financial-document-processing.yaml": ["bind-unused"],
    "vonage__user-authentication.yaml": ["bind-unused"],
    "whmcs__hosting-automation.yaml": ["bind-unused"],
    "wiremock__api-mocking-and-testing.yaml": [],
    "xweather__lightning-safety.yaml": ["missing-port", "unsupported-feature"],  # an `http`-type exposure (not served)
    "xweather__weather-alerts.yaml": [],
}
CLEAN = 52  # files with no error (88%); see above for the 7 others (the issue hoped for 90%, i.e. 54)


@pytest.fixture(scope="module")
def default() -> dict[str, FileResult]:
    return {name: check_file(CORPUS / name) for name in FILES}


@pytest.fixture(scope="module")
def strict() -> dict[str, FileResult]:
    return {name: check_file(CORPUS / name, strict=True) for name in FILES}


def run_refuses(name: str) -> bool:
    """What `naftiko run` does before serving: load, then compile, with the deployment's values
    (bind values need not be set; `--base-uri` given where a base URI has server variables)."""
    path = CORPUS / name
    d = Diagnostics()
    cap = load_capability(path, d)
    if cap is None or d.errors:
        return True
    deployed = {ns: "https://api.example.com" for ns, c in cap.consumes.items() if c.server_variables}
    try:
        compile_plan(cap, resolve_binds(cap, path.parent, allow_missing=True), base_uris=deployed)
    except CapabilityError:
        return True
    return False


def test_the_corpus_is_all_here():
    assert len(FILES) == 59 and sorted(EXPECTED) == FILES


def test_rule_ids_per_file_are_pinned(default):
    got = {name: sorted({d.rule for d in r.diagnostics if d.severity != "note"}) for name, r in default.items()}
    assert got == EXPECTED


@pytest.mark.parametrize("name", FILES)
def test_a_file_has_an_error_exactly_when_run_refuses_it(default, name):
    has_error = default[name].count("error") > 0
    assert has_error == run_refuses(name), [str(d) for d in default[name].diagnostics if d.severity == "error"]


def test_no_crash_and_every_finding_has_a_position(default, strict):
    for result in [*default.values(), *strict.values()]:
        for d in result.diagnostics:
            assert d.rule != "internal-error", str(d)
            assert d.pos.line > 0 or d.rule in ("import-cycle", "file-binary", "file-too-large"), str(d)


def test_clean_files(default):
    clean = [name for name, r in default.items() if r.count("error") == 0]
    assert len(clean) == CLEAN


def test_strict_rejects_every_file_the_official_schema_rejects(strict):
    for name, result in strict.items():
        rules = {d.rule for d in result.diagnostics if d.severity == "error"}
        if name in STRICT_PASSING:
            assert "strict-schema" not in rules, name
        else:
            assert rules & {"strict-schema", "yaml-syntax"}, name


def test_strict_adds_errors_only_under_its_own_rule(default, strict):
    for name in FILES:
        before = [d for d in default[name].diagnostics]
        after = [d for d in strict[name].diagnostics if d.rule != "strict-schema"]
        assert before == after, name
