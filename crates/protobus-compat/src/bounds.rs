//! Checks that run before a schema is parsed or a descriptor is built, so
//! that hostile input fails with a reason instead of exhausting the stack
//! (the parser and the descriptor builder recurse once per nesting level)
//! or reaching code that panics on descriptors no compiler would produce.

use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, UninterpretedOption};

/// Deepest nesting of brackets (`{ [ < (`) a schema's text may have: messages
/// in messages, and values of custom options in the text format. protox
/// itself stops nested messages at 32 levels.
pub const MAX_NESTING: usize = 32;

/// Refuses text that nests brackets deeper than [`MAX_NESTING`]; the error
/// starts with the `line:column` where the limit is passed. Strings and comments
/// are skipped, so brackets in them do not count.
pub(crate) fn check_nesting(source: &str) -> Result<(), String> {
    let bytes = source.as_bytes();
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        column += 1;
        match c {
            b'\n' => {
                line += 1;
                column = 0;
            }
            b'"' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                    column += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        line += 1;
                        column = 0;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' | b'<' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "{line}:{column}: brackets nest deeper than {MAX_NESTING} levels"
                    ));
                }
            }
            b'}' | b']' | b'>' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Refuses a decoded `FileDescriptorProto` that no compiler would produce in
/// ways the descriptor builder does not survive: an unknown `syntax`,
/// messages nested deeper than [`MAX_NESTING`], or option values (in the text
/// format) that nest deeper.
pub(crate) fn check_descriptor(file: &FileDescriptorProto) -> Result<(), String> {
    match file.syntax.as_deref() {
        None | Some("") | Some("proto2") | Some("proto3") => {}
        Some(other) => {
            return Err(format!(
                "syntax `{}` is not supported (proto2 or proto3)",
                other.escape_debug()
            ));
        }
    }
    // Every option a file can carry, wherever it is declared.
    let mut options: Vec<&UninterpretedOption> = Vec::new();
    options.extend(file.options.iter().flat_map(|o| &o.uninterpreted_option));
    for field in &file.extension {
        options.extend(field.options.iter().flat_map(|o| &o.uninterpreted_option));
    }
    enum_options(&mut options, &file.enum_type);
    for s in &file.service {
        options.extend(s.options.iter().flat_map(|o| &o.uninterpreted_option));
        for m in &s.method {
            options.extend(m.options.iter().flat_map(|o| &o.uninterpreted_option));
        }
    }
    let mut stack: Vec<(&DescriptorProto, usize)> =
        file.message_type.iter().map(|m| (m, 1)).collect();
    while let Some((message, depth)) = stack.pop() {
        if depth > MAX_NESTING {
            return Err(format!(
                "message `{}` is nested deeper than {MAX_NESTING} levels",
                message.name().escape_debug()
            ));
        }
        options.extend(message.options.iter().flat_map(|o| &o.uninterpreted_option));
        for field in message.field.iter().chain(&message.extension) {
            options.extend(field.options.iter().flat_map(|o| &o.uninterpreted_option));
        }
        for o in &message.oneof_decl {
            options.extend(o.options.iter().flat_map(|o| &o.uninterpreted_option));
        }
        enum_options(&mut options, &message.enum_type);
        stack.extend(message.nested_type.iter().map(|m| (m, depth + 1)));
    }
    for option in options {
        if let Some(value) = &option.aggregate_value {
            check_nesting(value).map_err(|e| format!("an option's value: {e}"))?;
        }
    }
    Ok(())
}

/// The options of `enums` and of their values.
fn enum_options<'a>(out: &mut Vec<&'a UninterpretedOption>, enums: &'a [EnumDescriptorProto]) {
    for e in enums {
        out.extend(e.options.iter().flat_map(|o| &o.uninterpreted_option));
        for v in &e.value {
            out.extend(v.options.iter().flat_map(|o| &o.uninterpreted_option));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let deep = format!("{}{}", "{".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert_eq!(check_nesting(&deep), Ok(()));
        let deeper = format!("x\n  {}", "{ ".repeat(MAX_NESTING + 1));
        let err = check_nesting(&deeper).unwrap_err();
        assert!(err.starts_with("2:67:"), "{err}");
        let quoted = format!(
            "\"{}\" '{}' // {}\n/* {} */",
            "{".repeat(99),
            "[\\'".repeat(99),
            "(".repeat(99),
            "<".repeat(99)
        );
        assert_eq!(check_nesting(&quoted), Ok(()));
    }

    #[test]
    fn unknown_syntax_and_deep_messages_are_refused() {
        let file = FileDescriptorProto {
            syntax: Some("proto9".into()),
            ..Default::default()
        };
        assert!(check_descriptor(&file).unwrap_err().contains("proto9"));
        let mut message = DescriptorProto::default();
        for _ in 0..MAX_NESTING {
            message = DescriptorProto {
                name: Some("M".into()),
                nested_type: vec![message],
                ..Default::default()
            };
        }
        let file = FileDescriptorProto {
            message_type: vec![message],
            ..Default::default()
        };
        assert!(
            check_descriptor(&file)
                .unwrap_err()
                .contains("deeper than 32")
        );
    }
}
