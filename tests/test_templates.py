"""Templates: compiled once, bound to secrets once, rendered as data (never re-read as templates)."""

import json

from naftiko_runtime.templates import MISSING, Template, to_text


def lookup(values):
    def find(ref):
        value = values.get(ref.path[0], MISSING)
        for key in ref.path[1:]:
            value = value.get(key, MISSING) if isinstance(value, dict) else MISSING
        return value

    return find


def test_bind_folds_secrets_into_constant_text():
    t = Template.compile("Bearer {{env.API_KEY}}").bind(lambda r: "s3cret" if r.path == ("env", "API_KEY") else MISSING)
    assert t.is_constant and t.constant() == "Bearer s3cret"


def test_client_text_that_looks_like_a_template_is_not_rendered():
    t = Template.compile("q={{query}}").bind(lambda r: "s3cret" if r.path == ("env", "KEY") else MISSING)
    assert t.render(lookup({"query": "{{env.KEY}}"})) == "q={{env.KEY}}"


def test_lists_and_objects_render_as_json_booleans_lowercase():
    assert to_text([1, "a"]) == '[1,"a"]'
    assert to_text({"a": True}) == '{"a":true}'
    assert to_text(False) == "false"
    assert Template.compile("{{ids}}").render_value(lookup({"ids": [1, 2]})) == [1, 2]


def test_no_html_escaping_and_hyphenated_dotted_names():
    t = Template.compile("<{{get-ship.name}}> & {{x}}")
    assert t.render(lookup({"get-ship": {"name": "A&B"}, "x": "<b>"})) == "<A&B> & <b>"


def test_json_body_template_escapes_inside_strings_and_encodes_values():
    t = Template.compile_json('{"name": "{{name}}", "ids": {{ids}}, "note": "x {{missing}} y", "n": {{missing}}}')
    out = t.render(lookup({"name": 'say "hi"\n', "ids": ["a", 1]}))
    assert json.loads(out) == {"name": 'say "hi"\n', "ids": ["a", 1], "note": "x  y", "n": None}


def test_missing_detection():
    t = Template.compile("{{a}}-{{b}}")
    assert t.all_missing(lookup({}))
    assert not t.all_missing(lookup({"a": 1}))
    assert t.render(lookup({"a": 1})) == "1-"
