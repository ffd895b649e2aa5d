"""The real-world corpus: every file with an exposure builds its routes and tools, or fails with a
diagnostic that names file:line and a real reason (pinned here, so a regression shows)."""

from pathlib import Path

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.yaml"))

# file -> (rule of the first error, a fragment of its message): each is broken as written.
LOAD_FAILS = {
    "amazon-ec2-auto-scaling__ec2-auto-scaling.yaml": ("yaml-syntax", "96:202"),  # unescaped quotes in a description
    "amazon-ec2-auto-scaling__ec2-auto-scaling-management.yaml": ("yaml-syntax", "shared/ec2-auto-scaling.yaml:96:202"),  # imports the file above
    "amazon-fsx__amazon-fsx-file-system-management.yaml": ("required-field", "missing `baseUri`"),  # no upstream at all
}
# Fails to compile even on --mock (the capability itself is inconsistent).
MOCK_FAILS = {
    "amplitude__amplitude-identity-and-privacy.yaml": "GET /v1/users is served twice",  # getScimUser has no id: unreachable
    "apache-orc__orc-workflow.yaml": "call 'orc.getFileSchema': consumes 'orc' has no operation 'getFileSchema'",
    "upbound__platform-engineering.yaml": "call 'upbound.list-teams': consumes 'upbound' has no operation 'list-teams'",
}
# Compiles on --mock but a real run refuses it, naming why (never sends broken requests).
REAL_FAILS = {
    "mastercard__loyalty-and-offers.yaml": "authentication type 'oauth1' on consumes 'loyalty-promotions' is not supported",
    # OpenAPI server variables: served once `--base-uri` gives each namespace its URL
    "oracle-goldengate__cloud-management.yaml": "baseUri of consumes 'goldengate-cloud' has server variables {region} with no value; pass `--base-uri goldengate-cloud=URL`",
}
# Credentials or base URIs naming variables no bind declares: read from the environment (warning),
# so a real run needs them set, and names them when they are not.
IMPLICIT_ENV = {
    "amplitude__amplitude-identity-and-privacy.yaml": {"AMPLITUDE_SECRET_KEY"},
    "avalara__avatax-apis-accounts.yaml": {"baseurl", "AVALARA_USER", "AVALARA_PASS"},
    "betsolutions__casino-platform.yaml": {"BETSOLUTIONS_HASH"},
    "fullstory__server-users.yaml": {"FULLSTORY_USER", "FULLSTORY_PASS"},
    "sap__enterprise-business-operations.yaml": {"SAP_B1_SESSION"},
}


def compile_file(name: str, mock: bool):
    path = CORPUS / name
    d = Diagnostics()
    cap = load_capability(path, d)
    return cap, d, (lambda: compile_plan(cap, resolve_binds(cap, path.parent, allow_missing=True), mock=mock))


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_serves_or_fails_with_a_positioned_reason(name):
    cap, d, build = compile_file(name, mock=True)
    if name in LOAD_FAILS:
        rule, fragment = LOAD_FAILS[name]
        assert d.errors and d.errors[0].rule == rule and fragment in str(d.errors[0])
        assert d.errors[0].pos.line > 0
        return
    assert not d.errors, [str(x) for x in d.errors]
    if not cap.rest and not cap.mcp:
        return  # a shared consumes file (imported by others) or a file with no exposure
    if name in MOCK_FAILS:
        with pytest.raises(CapabilityError) as err:
            build()
        first = err.value.diagnostics[0]
        assert MOCK_FAILS[name] in first.message and first.pos.line > 0 and first.pos.file.endswith(name)
        return
    engine = build()
    for api in engine.rest:
        assert len(api.routes) == len(api.exposure.operations)
        for route in api.routes:
            assert route.path.startswith("/")
    for api in engine.mcp:
        assert [t.tool.name for t in api.tools] == [t.name for t in api.exposure.tools]
    real = compile_file(name, mock=False)[2]
    if name in REAL_FAILS:
        with pytest.raises(CapabilityError) as err:
            real()
        assert any(REAL_FAILS[name] in x.message and x.pos.line > 0 for x in err.value.diagnostics), [str(x) for x in err.value.diagnostics]
    else:
        real()


@pytest.mark.parametrize("name", sorted(IMPLICIT_ENV))
def test_undeclared_credentials_are_read_from_the_environment(name, monkeypatch):
    from naftiko_runtime.errors import BindError

    cap, d, _ = compile_file(name, mock=False)
    warned = {x.message.split("variable ")[1].split(" ")[0] for x in d if x.rule == "bind-implicit"}
    assert warned == IMPLICIT_ENV[name]
    for var in IMPLICIT_ENV[name]:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BindError) as err:
        resolve_binds(cap, CORPUS)
    missing = {m.name for m in err.value.missing}
    assert IMPLICIT_ENV[name] <= missing
    assert all(m.pos.line > 0 for m in err.value.missing)


def test_most_of_the_corpus_serves():
    serving = [n for n in FILES if n not in LOAD_FAILS and n not in MOCK_FAILS]
    assert len(serving) >= 50
