/// Why a schema could not be compiled: `file:line:column: message`, as the
/// compiler reported it. As a [`miette::Diagnostic`] it keeps the compiler's
/// labels and source, for a report that shows the line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct Error(Box<ErrorKind>);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum ErrorKind {
    #[error("{location}: {error}")]
    #[diagnostic(forward(error))]
    Located {
        location: String,
        error: protox::Error,
    },
    #[error("{0}")]
    #[diagnostic(forward(0))]
    Compile(protox::Error),
}

impl Error {
    /// Where the problem is, as `file:line:column`, when the compiler said.
    pub fn location(&self) -> Option<&str> {
        match &*self.0 {
            ErrorKind::Located { location, .. } => Some(location),
            ErrorKind::Compile(_) => None,
        }
    }

    /// Adds the line and column of the compiler's first label.
    pub(crate) fn compile(err: protox::Error) -> Self {
        let located = protobus_contract::Location::of_diagnostic(&err).map(|at| at.to_string());
        Error(Box::new(match located {
            Some(location) => ErrorKind::Located {
                location,
                error: err,
            },
            None => ErrorKind::Compile(err),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Dependency, Schema};

    #[test]
    fn an_error_in_an_import_points_at_the_import_and_keeps_its_label() {
        let money = Dependency {
            name: "money.proto".to_owned(),
            source: "syntax = \"proto3\";\nmessage Money {\n  int64 units = ;\n}\n".into(),
            reference: None,
        };
        let err = Schema::compile_named(
            "order.proto",
            "syntax = \"proto3\";\nimport \"money.proto\";\nmessage Order { Money total = 1; }\n",
            &[money],
        )
        .unwrap_err();
        assert_eq!(err.location(), Some("money.proto:3:17"));
        let mut report = String::new();
        miette::NarratableReportHandler::new()
            .render_report(&mut report, &err)
            .unwrap();
        assert!(report.contains("label at line 3, column 17"), "{report}");
    }
}
