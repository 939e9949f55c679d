//! Where in a `.proto` file something is, as people and editors read it.

use std::fmt;

/// A position in a `.proto` file: `file:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Location {
    /// The file's import path, e.g. `shop/orders/v1/orders.proto`.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The position of byte `offset` of `source` (a compiler label's offset).
    pub fn at_offset(file: &str, source: &str, offset: usize) -> Option<Self> {
        let before = source.get(..offset)?;
        Some(Location {
            file: file.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        })
    }

    /// Where a compiler's diagnostic points: its first label, in the source
    /// the diagnostic carries (so the file is never read again).
    pub fn of_diagnostic(diagnostic: &dyn miette::Diagnostic) -> Option<Self> {
        let offset = diagnostic.labels()?.next()?.offset();
        let head = diagnostic
            .source_code()?
            .read_span(&miette::SourceSpan::from(0..offset), 0, 0)
            .ok()?;
        let file = head.name()?.to_owned();
        Self::at_offset(&file, std::str::from_utf8(head.data()).ok()?, offset)
    }

    /// Where a message's `(protobus.event)` option is, or the message when
    /// the compiler recorded no position for the option.
    pub fn of_event(message: &prost_reflect::MessageDescriptor) -> Option<Self> {
        const MESSAGE_OPTIONS: i32 = 7;
        let file = message.parent_file();
        let info = file.file_descriptor_proto().source_code_info.as_ref()?;
        let find = |path: &[i32]| info.location.iter().find(|l| l.path == path);
        let mut option = message.path().to_vec();
        option.extend([MESSAGE_OPTIONS, crate::EVENT_FIELD_NUMBER]);
        let found = find(&option).or_else(|| find(message.path()))?;
        Self::of_span(file.name(), &found.span)
    }

    /// The start of a descriptor's source span (`SourceCodeInfo.Location.span`:
    /// 0-based line and column first).
    pub fn of_span(file: &str, span: &[i32]) -> Option<Self> {
        match span {
            [line, column, ..] => Some(Location {
                file: file.to_owned(),
                line: usize::try_from(*line).ok()? + 1,
                column: usize::try_from(*column).ok()? + 1,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_spans_become_lines_and_columns() {
        let source = "syntax = \"proto3\";\nmessage Ä { int32 x = 1; }\n";
        let offset = source.find("int32").unwrap();
        let at = Location::at_offset("a.proto", source, offset).unwrap();
        assert_eq!(at.to_string(), "a.proto:2:13", "columns count characters");
        assert_eq!(
            Location::at_offset("a.proto", source, source.len() + 1),
            None
        );
        let labelled = protox_parse::parse(
            "a.proto",
            "syntax = \"proto3\";\nmessage A { string x = 1 [json_name = \"Ä\"]; int32 y = ; }\n",
        )
        .unwrap_err();
        let at = Location::of_diagnostic(&labelled).unwrap();
        assert_eq!(at.to_string(), "a.proto:2:55", "columns count characters");
        let spanned = Location::of_span("a.proto", &[1, 4, 20]).unwrap();
        assert_eq!(spanned.to_string(), "a.proto:2:5");
        assert_eq!(Location::of_span("a.proto", &[1]), None);
    }
}
