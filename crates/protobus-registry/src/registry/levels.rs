//! Compatibility levels: the global one and each subject's own.

use protobus_compat::CompatibilityLevel;

use super::Registry;
use crate::Error;
use crate::records::Record;

impl Registry {
    /// `GET /config`.
    pub fn global_level(&self) -> CompatibilityLevel {
        self.read(|state| state.global.unwrap_or_default())
    }

    /// `PUT /config` (`subject` `None`) or `PUT /config/{subject}`.
    pub async fn set_level(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel, Error> {
        let subject = subject.map(str::to_owned);
        self.write(None, |state| {
            state.check_writable(subject.as_deref())?;
            Ok((
                vec![Record::Config {
                    subject: subject.clone(),
                    level: Some(level),
                }],
                level,
            ))
        })
        .await
    }

    /// `GET /config/{subject}`, falling back to the global level if asked to.
    pub fn subject_level(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<CompatibilityLevel, Error> {
        self.read(
            |state| match state.subjects.get(subject).and_then(|s| s.config) {
                Some(level) => Ok(level),
                None if default_to_global => Ok(state.global.unwrap_or_default()),
                None => Err(Error::subject_config_not_found(subject)),
            },
        )
    }

    /// `DELETE /config` or `DELETE /config/{subject}`: returns the level removed.
    pub async fn delete_level(&self, subject: Option<&str>) -> Result<CompatibilityLevel, Error> {
        let subject = subject.map(str::to_owned);
        self.write(None, |state| {
            state.check_writable(subject.as_deref())?;
            let previous = match &subject {
                None => state.global.unwrap_or_default(),
                Some(name) => {
                    let found = state
                        .subjects
                        .get(name)
                        .ok_or_else(|| Error::subject_not_found(name))?;
                    found
                        .config
                        .ok_or_else(|| Error::subject_config_not_found(name))?
                }
            };
            let record = Record::Config {
                subject: subject.clone(),
                level: None,
            };
            Ok((vec![record], previous))
        })
        .await
    }
}
