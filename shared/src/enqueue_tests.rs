use super::*;
use crate::error::ErrorCode;

const BASE: &str = "@cf/baai/bge-base-en-v1.5";
const SMALL: &str = "@cf/baai/bge-small-en-v1.5";

fn config() -> Config {
    Config::parse(include_str!("../../embeddings.toml")).unwrap()
}

fn text(text: &str) -> Request<'_> {
    Request {
        text_field: "content",
        text,
        service: None,
        model: None,
        table: None,
        id: None,
    }
}

fn record<'a>(table: &'a str, id: &'a str) -> Request<'a> {
    Request {
        table: Some(table),
        id: Some(id),
        ..text("x")
    }
}

/// The model and the target's names, or the error's code and message.
type Outcome = Result<(&'static str, Option<(String, String)>), (ErrorCode, String)>;

fn outcome(config: &Config, request: Request<'_>) -> Outcome {
    resolve(config, request, trusted)
        .map(|resolved| (resolved.model.name, resolved.target.map(|r| r.names())))
        .map_err(|e: ApiError| (e.code, e.message))
}

fn refused(config: &Config, request: Request<'_>) -> (ErrorCode, String) {
    outcome(config, request).expect_err("refused")
}

#[test]
fn free_text_is_by_the_named_model_a_services_or_the_default() {
    let config = config();
    assert_eq!(outcome(&config, text("x")), Ok((BASE, None)));
    let named = Request {
        model: Some(SMALL),
        ..text("x")
    };
    assert_eq!(outcome(&config, named), Ok((SMALL, None)));
    let by_service = Request {
        service: Some("noteSearch"),
        ..text("x")
    };
    assert_eq!(outcome(&config, by_service), Ok((SMALL, None)));
}

#[test]
fn a_records_job_is_by_its_tables_model() {
    let config = config();
    let target = Some(("notes".to_owned(), "n_1".to_owned()));
    assert_eq!(
        outcome(&config, record("notes", "n_1")),
        Ok((SMALL, target.clone()))
    );
    for agreeing in [
        Request {
            model: Some(SMALL),
            ..record("notes", "n_1")
        },
        Request {
            service: Some("noteSearch"),
            ..record("notes", "n_1")
        },
    ] {
        assert_eq!(outcome(&config, agreeing), Ok((SMALL, target.clone())));
    }
    let resolved = resolve(&config, record("notes", "n_1"), trusted).unwrap();
    let target = resolved.target.unwrap();
    assert_eq!(
        (target.table().name.as_str(), target.id()),
        ("notes", "n_1")
    );
}

#[test]
fn a_model_that_contradicts_the_tables_is_refused() {
    let config = config();
    let expected = (
        ErrorCode::InvalidRequest,
        format!("table `claims` embeds with `{BASE}`; its vectors cannot mix models"),
    );
    let by_model = Request {
        model: Some(SMALL),
        ..record("claims", "clm_1")
    };
    assert_eq!(refused(&config, by_model), expected);
    let by_service = Request {
        service: Some("noteSearch"),
        ..record("claims", "clm_1")
    };
    assert_eq!(refused(&config, by_service), expected);
}

#[test]
fn table_and_id_come_together_or_not_at_all() {
    let config = config();
    let expected = (
        ErrorCode::InvalidRequest,
        "give `table` and `id` together, or neither".to_owned(),
    );
    let table_only = Request {
        table: Some("claims"),
        ..text("x")
    };
    let id_only = Request {
        id: Some("clm_1"),
        ..text("x")
    };
    assert_eq!(refused(&config, table_only), expected);
    assert_eq!(refused(&config, id_only), expected);
}

#[test]
fn an_unknown_table_is_not_found() {
    assert_eq!(
        refused(&config(), record("stories", "s_1")),
        (
            ErrorCode::NotFound,
            "`stories` is not an embedding table".to_owned()
        )
    );
}

#[test]
fn the_text_and_the_record_id_are_guarded() {
    let config = config();
    let blank = refused(&config, text(" \n\u{3000}"));
    assert_eq!(
        blank,
        (
            ErrorCode::InvalidRequest,
            "`content` must not be empty".to_owned()
        )
    );
    let over = "x".repeat(guard::MAX_TEXT_CHARS + 1);
    let rpc = Request {
        text_field: "text",
        ..text(&over)
    };
    assert_eq!(
        refused(&config, rpc).1,
        "`text` is over 65536 characters",
        "the message names the transport's field"
    );
    for bad in ["", "bad id'", &"x".repeat(guard::MAX_RECORD_ID_BYTES + 1)] {
        let (code, message) = refused(&config, record("claims", bad));
        assert_eq!(code, ErrorCode::InvalidRequest, "{bad}");
        assert!(message.starts_with("`id` must be"), "{message}");
    }
    let longest = "x".repeat(guard::MAX_RECORD_ID_BYTES);
    assert!(outcome(&config, record("claims", &longest)).is_ok());
}

#[test]
fn a_service_and_a_model_are_checked_before_the_target() {
    let config = config();
    let both = Request {
        service: Some("noteSearch"),
        model: Some(SMALL),
        ..text("x")
    };
    assert_eq!(
        refused(&config, both).1,
        "give `service` or `model`, not both"
    );
    let no_service = Request {
        service: Some("nope"),
        ..record("claims", "clm_1")
    };
    assert_eq!(refused(&config, no_service).0, ErrorCode::NotFound);
    let no_model = Request {
        model: Some("@cf/nope"),
        table: Some("claims"),
        ..text("x")
    };
    assert_eq!(refused(&config, no_model).0, ErrorCode::UnknownModel);
}

#[test]
fn two_faults_are_told_in_the_rules_order() {
    let config = config();
    let blank_without_id = Request {
        table: Some("claims"),
        ..text("  ")
    };
    assert!(refused(&config, blank_without_id)
        .1
        .contains("must not be empty"));
    let unknown_table_bad_id = record("stories", "bad id");
    assert_eq!(
        refused(&config, unknown_table_bad_id).0,
        ErrorCode::NotFound
    );
    let bad_id_other_model = Request {
        model: Some(SMALL),
        ..record("claims", "bad id")
    };
    assert!(refused(&config, bad_id_other_model)
        .1
        .starts_with("`id` must be"));
}

#[test]
fn access_is_checked_once_the_table_is_known_and_before_the_id() {
    let config = config();
    let seen = std::cell::RefCell::new(Vec::new());
    let forbid = |table: Option<&TableConfig>| {
        seen.borrow_mut().push(table.map(|t| t.name.clone()));
        Err(ApiError::new(ErrorCode::Forbidden, "no"))
    };
    let code = |request| resolve(&config, request, forbid).map_err(|e: ApiError| e.code);
    assert_eq!(code(text("x")), Err(ErrorCode::Forbidden));
    assert_eq!(code(record("claims", "bad id")), Err(ErrorCode::Forbidden));
    assert_eq!(code(record("stories", "s_1")), Err(ErrorCode::NotFound));
    let table_only = Request {
        table: Some("claims"),
        ..text("x")
    };
    assert_eq!(code(table_only), Err(ErrorCode::InvalidRequest));
    assert_eq!(
        *seen.borrow(),
        vec![None, Some("claims".to_owned())],
        "once per request that reaches it, with its table"
    );
}
