//! The documented deployment recipes (`docs/recipes/`), which the tests run as written: read one
//! and fill in its `@NAME@` placeholders.

/// The text of `docs/recipes/{name}`.
pub fn recipe(name: &str) -> String {
    let path = crate::workspace_root().join("docs/recipes").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces every `@NAME@` placeholder of `values`; fails when the template lacks one of them
/// or one is left over (the recipe and the test disagree).
pub fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        assert!(text.contains(name), "the recipe has no {name} placeholder");
        text = text.replace(name, value);
    }
    let leftover: Vec<&str> = text
        .split('@')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        })
        .collect();
    assert!(
        leftover.is_empty(),
        "placeholders not substituted: {leftover:?}"
    );
    text
}
