//! Modes: which writes the registry takes, globally and per subject
//! (Confluent's `READWRITE`, `READONLY`, `READONLY_OVERRIDE` and `IMPORT`).

use serde::{Deserialize, Serialize};

use super::Registry;
use crate::Error;
use crate::records::Record;
use crate::state::State;

/// What a registry or a subject accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Registrations, deletes and config changes. The default.
    #[default]
    Readwrite,
    /// Reads only; mode changes still go through.
    Readonly,
    /// As `READONLY`; set globally, it also overrides every subject's mode.
    ReadonlyOverride,
    /// Registrations with the id (and version) the caller gives, to move
    /// schemas from another registry with their ids.
    Import,
}

impl Mode {
    /// Every mode, for parsing and listing.
    pub const ALL: [Mode; 4] = [
        Mode::Readwrite,
        Mode::Readonly,
        Mode::ReadonlyOverride,
        Mode::Import,
    ];

    /// The name Confluent's REST API uses, e.g. `READONLY`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Readwrite => "READWRITE",
            Mode::Readonly => "READONLY",
            Mode::ReadonlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }

    /// Parses a mode name as the REST API spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    fn read_only(self) -> bool {
        matches!(self, Mode::Readonly | Mode::ReadonlyOverride)
    }
}

impl State {
    /// The mode that applies to `subject`: a global `READONLY_OVERRIDE`,
    /// else its own, else the global one, else `READWRITE`.
    pub(crate) fn mode(&self, subject: &str) -> Mode {
        match self.mode {
            Some(Mode::ReadonlyOverride) => Mode::ReadonlyOverride,
            global => self
                .subjects
                .get(subject)
                .and_then(|s| s.mode)
                .or(global)
                .unwrap_or_default(),
        }
    }

    /// Refuses a change to `subject` (a delete or a config change) unless
    /// its mode takes writes.
    pub(crate) fn check_writable(&self, subject: Option<&str>) -> Result<(), Error> {
        let mode = match subject {
            Some(subject) => self.mode(subject),
            None => self.mode.unwrap_or_default(),
        };
        if mode.read_only() {
            return Err(Error::operation_not_permitted(format!(
                "{} is in read-only mode",
                subject.map_or_else(|| "The registry".to_owned(), |s| format!("Subject {s}"))
            )));
        }
        Ok(())
    }

    /// Refuses a registration under `subject` that its mode does not take:
    /// none in a read-only mode, a given id only in `IMPORT`, and otherwise
    /// only in `READWRITE`.
    pub(crate) fn check_register(&self, subject: &str, importing: bool) -> Result<(), Error> {
        self.check_writable(Some(subject))?;
        let mode = self.mode(subject);
        match (importing, mode) {
            (true, Mode::Import) | (false, Mode::Readwrite) => Ok(()),
            (true, _) => Err(Error::operation_not_permitted(format!(
                "Subject {subject} is not in import mode"
            ))),
            (false, _) => Err(Error::operation_not_permitted(format!(
                "Subject {subject} is not in read-write mode"
            ))),
        }
    }
}

impl Registry {
    /// The global mode (`GET /mode`).
    pub fn global_mode(&self) -> Mode {
        self.read(|state| state.mode.unwrap_or_default())
    }

    /// `subject`'s own mode, falling back to the global one if asked to
    /// (`GET /mode/{subject}`).
    pub fn subject_mode(&self, subject: &str, default_to_global: bool) -> Result<Mode, Error> {
        self.read(
            |state| match state.subjects.get(subject).and_then(|s| s.mode) {
                Some(mode) => Ok(mode),
                None if default_to_global => Ok(state.mode.unwrap_or_default()),
                None => Err(Error::subject_mode_not_found(subject)),
            },
        )
    }

    /// Sets the global mode (`subject` `None`) or a subject's
    /// (`PUT /mode[/{subject}]`). `IMPORT` needs a subject (or registry)
    /// without schemas, unless `force`.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Mode,
        force: bool,
    ) -> Result<Mode, Error> {
        let subject = subject.map(str::to_owned);
        self.write(None, |state| {
            if mode == Mode::Import && !force {
                let has_schemas = match &subject {
                    Some(name) => state
                        .subjects
                        .get(name)
                        .is_some_and(|s| !s.versions.is_empty()),
                    None => !state.schemas.is_empty(),
                };
                if has_schemas {
                    return Err(Error::operation_not_permitted(
                        "Cannot import since found existing subjects".to_owned(),
                    ));
                }
            }
            Ok((
                vec![Record::Mode {
                    subject: subject.clone(),
                    mode: Some(mode),
                }],
                mode,
            ))
        })
        .await
    }

    /// Removes a subject's own mode (`DELETE /mode/{subject}`); returns it.
    pub async fn delete_mode(&self, subject: &str) -> Result<Mode, Error> {
        let subject = subject.to_owned();
        self.write(None, |state| {
            let previous = state
                .subjects
                .get(&subject)
                .and_then(|s| s.mode)
                .ok_or_else(|| Error::subject_mode_not_found(&subject))?;
            Ok((
                vec![Record::Mode {
                    subject: Some(subject.clone()),
                    mode: None,
                }],
                previous,
            ))
        })
        .await
    }
}
