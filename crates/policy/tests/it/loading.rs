//! Loading: built-ins, extra directories, and errors that name the file.

use strongroom_policy::{BUILTIN_POLICIES, PolicyEngine, PolicyError};

fn load_with(files: &[(&str, &str)]) -> Result<PolicyEngine, PolicyError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, src) in files {
        std::fs::write(dir.path().join(name), src).unwrap();
    }
    PolicyEngine::load(Some(dir.path()))
}

#[test]
fn builtins_load_and_are_all_named() {
    let e = PolicyEngine::load(None).unwrap();
    let ids: usize = BUILTIN_POLICIES
        .iter()
        .map(|(_, src)| src.matches("@id(\"").count())
        .sum();
    assert_eq!(e.policy_count(), ids);
    assert!(ids > 30, "{ids}");
    for (file, src) in BUILTIN_POLICIES {
        for line in src.lines().filter(|l| l.starts_with("@id(")) {
            assert!(
                line.starts_with("@id(\"guardrail.") || line.starts_with("@id(\"role."),
                "{file}: {line}"
            );
        }
    }
}

#[test]
fn an_empty_or_unrelated_directory_changes_nothing() {
    let e = load_with(&[("README.md", "not a policy {"), ("empty.cedar", "")]).unwrap();
    assert_eq!(
        e.policy_count(),
        PolicyEngine::load(None).unwrap().policy_count()
    );
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let err = load_with(&[
        (
            "good.cedar",
            "permit(principal, action == Action::\"read_tenant\", resource);\n",
        ),
        (
            "broken.cedar",
            "// fine\npermit(principal, action, resource) when { ;\n",
        ),
    ])
    .unwrap_err();
    let PolicyError::Parse { file, message } = &err else {
        panic!("{err:?}")
    };
    assert!(file.ends_with("broken.cedar"), "{file}");
    assert!(message.contains("line 2"), "{message}");
    assert!(err.to_string().contains("broken.cedar"));
}

#[test]
fn strict_validation_failures_name_the_file_and_policy() {
    for (src, needle) in [
        // optional attribute read without `has`
        (
            "permit(principal, action, resource) when { context.purpose == Purpose::\"case-resolution\" };",
            "purpose",
        ),
        // a role that does not exist
        (
            "permit(principal, action, resource) when { context.caller.roles.contains(Role::\"root\") };",
            "root",
        ),
        // an action that does not exist
        (
            "permit(principal, action == Action::\"read_everything\", resource);",
            "read_everything",
        ),
        // an attribute that does not exist
        (
            "@id(\"x.misspelt\") forbid(principal, action, resource) when { context.caller.activ };",
            "activ",
        ),
        // a type error: comparing a string with a bool (strict mode)
        (
            "forbid(principal, action, resource) when { context.target.grant.id == true };",
            "",
        ),
    ] {
        let err = load_with(&[("strict.cedar", src)]).unwrap_err();
        let PolicyError::Invalid {
            file,
            policy_id,
            message,
        } = &err
        else {
            panic!("{src}: {err:?}")
        };
        assert!(file.ends_with("strict.cedar"), "{file}");
        let want_id = if src.contains("x.misspelt") {
            "x.misspelt"
        } else {
            "strict.cedar#0"
        };
        assert_eq!(policy_id, want_id);
        assert!(message.contains(needle), "{src}: {message}");
        assert!(err.to_string().contains("strict.cedar"), "{err}");
    }
}

#[test]
fn ids_and_annotations_are_checked() {
    let cases: &[(&str, &str)] = &[
        (
            "@id(\"p\") @reason(\"teapot\") forbid(principal, action, resource);",
            "teapot",
        ),
        (
            "@id(\"guardrail.mine\") forbid(principal, action, resource);",
            "reserved",
        ),
        (
            "@id(\"role.tenant_admin.content\") permit(principal, action, resource);",
            "already used",
        ),
        (
            "@id(\"a\") permit(principal, action, resource); @id(\"a\") permit(principal, action, resource);",
            "already used",
        ),
    ];
    for (src, needle) in cases {
        let err = load_with(&[("ids.cedar", src)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("ids.cedar") && text.contains(needle),
            "{src}: {text}"
        );
    }
    let err = load_with(&[(
        "t.cedar",
        "permit(principal == ?principal, action, resource);",
    )])
    .unwrap_err();
    assert!(
        matches!(err, PolicyError::Template { ref file } if file.ends_with("t.cedar")),
        "{err:?}"
    );
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = PolicyEngine::load(Some(&missing)).unwrap_err();
    assert!(
        matches!(err, PolicyError::Io { ref path, .. } if path == &missing),
        "{err:?}"
    );
}
