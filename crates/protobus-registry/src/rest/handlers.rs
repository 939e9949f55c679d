//! One handler per route: path, query and body in Confluent's terms, the
//! registry's operation, and Confluent's response.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::messages::{
    self, ConfigRequest, ModeRequest, Params, SchemaByIdBody, SchemaRequest, SubjectVersionBody,
    body, flag, format, schema_id,
};
use super::{Reply, ok, raw_text};
use crate::registry::{Registry, VersionSpec};

pub(super) async fn schema_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
    q: Params,
) -> Reply {
    let found = r.schema_by_id(schema_id(&id)?, format(&q))?;
    Ok(ok(&SchemaByIdBody::from(&found)))
}

pub(super) async fn raw_schema_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
    q: Params,
) -> Reply {
    let found = r.schema_by_id(schema_id(&id)?, format(&q))?;
    Ok(raw_text(found.schema))
}

pub(super) async fn versions_of_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
    q: Params,
) -> Reply {
    let found = r.versions_of_id(schema_id(&id)?, flag(&q, "deleted"))?;
    let list: Vec<Value> = found
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    Ok(ok(&list))
}

pub(super) async fn subjects_of_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
    q: Params,
) -> Reply {
    let mut subjects: Vec<String> = r
        .versions_of_id(schema_id(&id)?, flag(&q, "deleted"))?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    Ok(ok(&subjects))
}

pub(super) async fn subjects(State(r): State<Registry>, q: Params) -> Reply {
    let prefix = q.get("subjectPrefix").map(String::as_str).unwrap_or("");
    Ok(ok(&r.subjects(flag(&q, "deleted"), prefix)))
}

pub(super) async fn lookup(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let input = body::<SchemaRequest>(bytes)?.into_input()?;
    let found = r
        .lookup(&subject, &input, flag(&q, "normalize"), flag(&q, "deleted"))
        .await?;
    Ok(ok(&SubjectVersionBody::from(&found)))
}

pub(super) async fn register(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let input = body::<SchemaRequest>(bytes)?.into_input()?;
    let id = r.register(&subject, &input, flag(&q, "normalize")).await?;
    Ok(ok(&json!({ "id": id })))
}

pub(super) async fn delete_subject(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
) -> Reply {
    Ok(ok(&r
        .delete_subject(&subject, flag(&q, "permanent"))
        .await?))
}

pub(super) async fn versions(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
) -> Reply {
    Ok(ok(&r.versions(&subject, flag(&q, "deleted"))?))
}

pub(super) async fn version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
) -> Reply {
    let spec = messages::version(&version)?;
    let found = r.version(&subject, spec, flag(&q, "deleted"), format(&q))?;
    Ok(ok(&SubjectVersionBody::from(&found)))
}

pub(super) async fn raw_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
) -> Reply {
    let spec = messages::version(&version)?;
    Ok(r.version(&subject, spec, flag(&q, "deleted"), format(&q))?
        .schema
        .into_response())
}

pub(super) async fn referenced_by(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Reply {
    let spec = messages::version(&version)?;
    Ok(ok(&r.referenced_by(&subject, spec)?))
}

pub(super) async fn delete_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
) -> Reply {
    let spec = messages::version(&version)?;
    Ok(ok(&r
        .delete_version(&subject, spec, flag(&q, "permanent"))
        .await?))
}

pub(super) async fn compatibility_all(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    compatibility(r, &subject, None, q, bytes).await
}

pub(super) async fn compatibility_one(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let spec = messages::version(&version)?;
    compatibility(r, &subject, Some(spec), q, bytes).await
}

pub(super) async fn compatibility(
    r: Registry,
    subject: &str,
    version: Option<VersionSpec>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let input = body::<SchemaRequest>(bytes)?.into_input()?;
    // `normalize` changes nothing here: compatibility never depends on the
    // form of the text.
    let (compatible, messages) = r.test_compatibility(subject, version, &input).await?;
    if flag(&q, "verbose") {
        Ok(ok(
            &json!({ "is_compatible": compatible, "messages": messages }),
        ))
    } else {
        Ok(ok(&json!({ "is_compatible": compatible })))
    }
}

pub(super) async fn global_config(State(r): State<Registry>) -> Reply {
    Ok(ok(&json!({ "compatibilityLevel": r.global_level() })))
}

pub(super) async fn set_global_config(
    State(r): State<Registry>,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let level = body::<ConfigRequest>(bytes)?.level()?;
    Ok(ok(
        &json!({ "compatibility": r.set_level(None, level).await? }),
    ))
}

pub(super) async fn delete_global_config(State(r): State<Registry>) -> Reply {
    Ok(ok(
        &json!({ "compatibilityLevel": r.delete_level(None).await? }),
    ))
}

pub(super) async fn subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
) -> Reply {
    let level = r.subject_level(&subject, flag(&q, "defaultToGlobal"))?;
    Ok(ok(&json!({ "compatibilityLevel": level })))
}

pub(super) async fn set_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let level = body::<ConfigRequest>(bytes)?.level()?;
    Ok(ok(
        &json!({ "compatibility": r.set_level(Some(&subject), level).await? }),
    ))
}

pub(super) async fn delete_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
) -> Reply {
    Ok(ok(
        &json!({ "compatibilityLevel": r.delete_level(Some(&subject)).await? }),
    ))
}

pub(super) async fn global_mode(State(r): State<Registry>) -> Reply {
    Ok(ok(&json!({ "mode": r.global_mode().name() })))
}

pub(super) async fn set_global_mode(
    State(r): State<Registry>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let mode = body::<ModeRequest>(bytes)?.mode()?;
    let set = r.set_mode(None, mode, flag(&q, "force")).await?;
    Ok(ok(&json!({ "mode": set.name() })))
}

pub(super) async fn subject_mode(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
) -> Reply {
    let mode = r.subject_mode(&subject, flag(&q, "defaultToGlobal"))?;
    Ok(ok(&json!({ "mode": mode.name() })))
}

pub(super) async fn set_subject_mode(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let mode = body::<ModeRequest>(bytes)?.mode()?;
    let set = r.set_mode(Some(&subject), mode, flag(&q, "force")).await?;
    Ok(ok(&json!({ "mode": set.name() })))
}

pub(super) async fn delete_subject_mode(
    State(r): State<Registry>,
    Path(subject): Path<String>,
) -> Reply {
    Ok(ok(
        &json!({ "mode": r.delete_mode(&subject).await?.name() }),
    ))
}

/// The AsyncAPI document of the registry's event subjects.
pub(super) async fn catalog(State(r): State<Registry>) -> Reply {
    let document = r.catalog().await?.asyncapi();
    Ok(super::json_response_as(
        axum::http::StatusCode::OK,
        "application/json",
        &document,
    ))
}

/// The catalog as one HTML page, for browsing. Nothing in it runs: the
/// page forbids scripts and loads nothing.
pub(super) async fn catalog_html(State(r): State<Registry>) -> Reply {
    use axum::http::header;
    let page = r.catalog().await?.html();
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        page,
    )
        .into_response())
}
