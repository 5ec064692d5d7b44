//! `GET` and `POST /compose`: writing a new entry, with the reflective prompts; a failed
//! publish returns the form filled in, with the reason.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use cairn_core::{EntryId, Kind, Story};

use super::{Session, Web};
use crate::Error;
use crate::service::NewStory;

use super::page::{Choice, Chrome, Form, PageResult, kind_label, posted_form, render, render_as};

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage {
    chrome: Chrome,
    error: String,
    kinds: Vec<Choice>,
    spaces: Vec<Choice>,
    prompts: Vec<Prompt>,
    form: ComposeForm,
}

struct Prompt {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    value: String,
}

/// What a member wrote on the compose page: shown back as typed when it cannot be published.
#[derive(Debug, Default)]
pub struct ComposeForm {
    kind: String,
    title: String,
    summary: String,
    text: String,
    tags: String,
    sections: [String; 5],
    spaces: Vec<String>,
    /// `organisation` to publish on behalf of the organisation.
    publish_as: Option<String>,
}

pub async fn compose(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    let form = ComposeForm {
        kind: "learning".into(),
        spaces: web.shared.spaces(),
        ..ComposeForm::default()
    };
    render(&compose_page(&web, &session, form, String::new()))
}

const PROMPTS: [(&str, &str, &str); 5] = [
    ("context", "Context", "Where and with whom did this happen?"),
    (
        "tried",
        "What we tried",
        "What did you do, and why did it seem a good idea?",
    ),
    (
        "happened",
        "What happened",
        "What actually happened? Include what went wrong.",
    ),
    (
        "learned",
        "What we learned",
        "What do you understand now that you did not before?",
    ),
    (
        "next",
        "What we would do differently",
        "What would you tell someone about to try this?",
    ),
];

fn compose_page(web: &Web, session: &Session, form: ComposeForm, error: String) -> ComposePage {
    let kinds = [Kind::LEARNING, Kind::FAILURE, Kind::QUESTION]
        .iter()
        .map(|kind| Choice {
            value: kind.to_string(),
            label: kind_label(*kind),
            selected: form.kind == kind.to_string(),
        })
        .collect();
    let spaces = web
        .shared
        .spaces()
        .into_iter()
        .map(|space| Choice {
            selected: form.spaces.contains(&space),
            label: space.clone(),
            value: space,
        })
        .collect();
    let prompts = PROMPTS
        .iter()
        .zip(&form.sections)
        .map(|((name, label, hint), value)| Prompt {
            name,
            label,
            hint,
            value: value.clone(),
        })
        .collect();
    ComposePage {
        chrome: Chrome::new(web, session, "Write an entry", "/compose"),
        error,
        kinds,
        spaces,
        prompts,
        form,
    }
}

pub async fn publish(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let composed = ComposeForm::from_form(&form);
    match publish_composed(&web, &session, &composed).await {
        Ok(id) => Ok(Redirect::to(&format!("/entries/{id}")).into_response()),
        // Nothing the member wrote is lost: the form comes back filled in, with the reason.
        Err(err) => render_as(
            StatusCode::UNPROCESSABLE_ENTITY,
            &compose_page(&web, &session, composed, err.to_string()),
        ),
    }
}

impl ComposeForm {
    /// Reads a URL-encoded compose form (the CSRF token is checked by the caller).
    pub fn parse(body: &[u8]) -> Self {
        Self::from_form(&Form::parse(body))
    }

    fn from_form(form: &Form) -> Self {
        let field = |name: &str| form.get(name).unwrap_or_default().to_string();
        Self {
            kind: field("kind"),
            title: field("title"),
            summary: field("summary"),
            text: field("text"),
            tags: field("tags"),
            sections: PROMPTS.map(|(name, _, _)| field(name)),
            spaces: form.all("space"),
            publish_as: form.get("as").map(str::to_string),
        }
    }

    /// The story to publish, or what the member must change first.
    pub fn new_story(&self) -> Result<NewStory, Error> {
        let form = self;
        let kind = Kind::from_name(&form.kind)
            .filter(|kind| kind.has_story())
            .ok_or_else(|| Error::BadRequest("Choose what kind of entry this is.".into()))?;
        if form.spaces.is_empty() {
            return Err(Error::BadRequest(
                "Choose at least one space to share the entry with.".into(),
            ));
        }
        let tags = cairn_core::body::normalize_tags(
            form.tags.split(',').filter(|tag| !tag.trim().is_empty()),
        )?;
        // The service tidies whitespace, as for every other way of publishing.
        let [context, tried, happened, learned, next] = form.sections.clone();
        let story = Story {
            title: form.title.clone(),
            summary: form.summary.clone(),
            text: form.text.clone(),
            context,
            tried,
            happened,
            learned,
            next,
            tags,
            ..Story::default()
        };
        let new = NewStory {
            kind,
            story,
            spaces: form.spaces.clone(),
            links: Vec::new(),
        };
        Ok(new)
    }
}

async fn publish_composed(
    web: &Web,
    session: &Session,
    form: &ComposeForm,
) -> Result<EntryId, Error> {
    let new = form.new_story()?;
    let publish_as = session.publish_as(form.publish_as.as_deref())?;
    let (entry, _) = web
        .shared
        .write(move |service| service.publish(new, &publish_as))
        .await?;
    Ok(entry.id())
}

impl ComposeForm {
    /// Whether the member chose to publish on behalf of the organisation.
    fn for_organisation(&self) -> bool {
        self.publish_as.as_deref() == Some("organisation")
    }
}
