//! Entry bodies. [`Story`] is the structured body of `learning`, `failure` and `question`
//! entries: a title, a plain-language summary, free Markdown text, the optional reflective
//! sections, tags, a language and links. [`Reply`] is a reply's Markdown text and [`Response`]
//! a typed response with an optional note, and [`Retraction`] the reason an author withdrew an
//! entry, [`Revocation`] an organisation's removal of a member, and [`Profile`] who an
//! organisation or member is. Empty strings mean "not given", so every body has
//! one encoding.

use serde::{Deserialize, Serialize};

use crate::{Error, codec};

pub const MAX_TITLE_LEN: usize = 200;
pub const MAX_SUMMARY_LEN: usize = 2_000;
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG_LEN: usize = 48;
pub const MAX_LINKS: usize = 16;
pub const MAX_LINK_LEN: usize = 2_048;
pub const MAX_LANGUAGE_LEN: usize = 35;
pub const MAX_REPLY_LEN: usize = 16 * 1_024;
pub const MAX_NOTE_LEN: usize = 1_000;

/// A learning, failure or question entry's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Story {
    pub title: String,
    /// A plain-language summary that someone from another field can follow.
    pub summary: String,
    /// Free Markdown text.
    pub text: String,
    /// The situation the work happened in.
    pub context: String,
    /// What was tried.
    pub tried: String,
    /// What happened.
    pub happened: String,
    /// What was learned.
    pub learned: String,
    /// What would be done differently next time.
    pub next: String,
    /// Normalised tags (see [`normalize_tag`]), unique, in the author's order.
    pub tags: Vec<String>,
    /// A BCP 47 language tag such as `en` or `cy`, or empty.
    pub language: String,
    /// http(s) or mailto links.
    pub links: Vec<String>,
}

/// The fields of a story to change in a revision; the ones left `None` keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoryEdit {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    pub context: Option<String>,
    pub tried: Option<String>,
    pub happened: Option<String>,
    pub learned: Option<String>,
    pub next: Option<String>,
    /// Replaces every tag (normalised on the way in).
    pub tags: Option<Vec<String>>,
}

impl StoryEdit {
    /// Every field of `story`, for a client that sends a whole revision.
    pub fn replacing(story: Story) -> Self {
        Self {
            title: Some(story.title),
            summary: Some(story.summary),
            text: Some(story.text),
            context: Some(story.context),
            tried: Some(story.tried),
            happened: Some(story.happened),
            learned: Some(story.learned),
            next: Some(story.next),
            tags: Some(story.tags),
        }
    }

    /// `story` with this edit's fields put in (tags normalised).
    pub fn apply(&self, mut story: Story) -> Result<Story, Error> {
        let fields = [
            (&mut story.title, &self.title),
            (&mut story.summary, &self.summary),
            (&mut story.text, &self.text),
            (&mut story.context, &self.context),
            (&mut story.tried, &self.tried),
            (&mut story.happened, &self.happened),
            (&mut story.learned, &self.learned),
            (&mut story.next, &self.next),
        ];
        for (field, given) in fields {
            if let Some(given) = given {
                field.clone_from(given);
            }
        }
        if let Some(tags) = &self.tags {
            story.tags = normalize_tags(tags.iter().map(String::as_str))?;
        }
        Ok(story)
    }
}

impl Story {
    /// The story as every publishing path stores it: title, summary and sections without
    /// surrounding whitespace. The Markdown text is kept exactly as written: its whitespace
    /// can mean something (a code block, a line break).
    pub fn tidied(mut self) -> Self {
        for field in [
            &mut self.title,
            &mut self.summary,
            &mut self.context,
            &mut self.tried,
            &mut self.happened,
            &mut self.learned,
            &mut self.next,
        ] {
            *field = field.trim().to_string();
        }
        self
    }

    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode("story body", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let story: Story = codec::decode("story body", bytes)?;
        story.check()?;
        Ok(story)
    }

    /// The tags of a story body that already passed [`Story::decode`], read in place: the
    /// store files each entry under its tags, and copying the whole story for them cost a
    /// tenth of its write.
    pub fn tags_of(bytes: &[u8]) -> Result<Vec<&str>, Error> {
        let view: StoryView<'_> = codec::decode_borrowed("story body", bytes)?;
        Ok(view.tags)
    }

    /// The named optional sections, in reading order, with their headings.
    pub fn sections(&self) -> [(&'static str, &str); 5] {
        [
            ("Context", &self.context),
            ("What we tried", &self.tried),
            ("What happened", &self.happened),
            ("What we learned", &self.learned),
            ("What we would do differently", &self.next),
        ]
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: String| Err(Error::BadField { field, reason });
        if self.title.trim().is_empty() {
            return bad("title", "must not be empty".into());
        }
        if self.title.len() > MAX_TITLE_LEN {
            return bad(
                "title",
                format!("is over {MAX_TITLE_LEN} bytes; put the detail in the summary"),
            );
        }
        if self.title.chars().any(char::is_control) {
            return bad("title", "must be a single line".into());
        }
        if self.summary.len() > MAX_SUMMARY_LEN {
            return bad(
                "summary",
                format!("is over {MAX_SUMMARY_LEN} bytes; put the detail in the body"),
            );
        }
        if self.tags.len() > MAX_TAGS {
            return bad("tags", format!("at most {MAX_TAGS} tags"));
        }
        for (index, tag) in self.tags.iter().enumerate() {
            if normalize_tag(tag)? != *tag {
                return bad("tags", format!("tag {tag:?} is not in normal form"));
            }
            if self.tags[..index].contains(tag) {
                return bad("tags", format!("tag {tag:?} appears twice"));
            }
        }
        if self.language.len() > MAX_LANGUAGE_LEN
            || !self
                .language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return bad(
                "language",
                format!(
                    "{:?} is not a language tag such as en or pt-BR",
                    self.language
                ),
            );
        }
        if self.links.len() > MAX_LINKS {
            return bad("links", format!("at most {MAX_LINKS} links"));
        }
        for link in &self.links {
            check_link(link)?;
        }
        Ok(())
    }
}

/// [`Story`] with its strings borrowed from the encoded body: the same fields in the same
/// order, so it decodes exactly the bytes a `Story` does.
#[derive(Deserialize)]
struct StoryView<'a> {
    _title: &'a str,
    _summary: &'a str,
    _text: &'a str,
    _context: &'a str,
    _tried: &'a str,
    _happened: &'a str,
    _learned: &'a str,
    _next: &'a str,
    #[serde(borrow)]
    tags: Vec<&'a str>,
    _language: &'a str,
    #[serde(borrow)]
    _links: Vec<&'a str>,
}

/// Brings a tag to its normal form: trimmed, without a leading `#`, lowercase, inner spaces as
/// `-`. Tags may use any letters or digits plus `-` and `_`, up to [`MAX_TAG_LEN`] bytes.
pub fn normalize_tag(raw: &str) -> Result<String, Error> {
    let tag: String = raw
        .trim()
        .trim_start_matches('#')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase();
    let reason = if tag.is_empty() {
        "must not be empty"
    } else if tag.len() > MAX_TAG_LEN {
        "is longer than 48 bytes"
    } else if !tag
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        "may use only letters, digits, '-' and '_'"
    } else {
        return Ok(tag);
    };
    Err(Error::BadField {
        field: "tag",
        reason: format!("{raw:?} {reason}"),
    })
}

/// Normalises tags as given by a person (see [`normalize_tag`]), dropping repeats and keeping
/// the first-given order.
pub fn normalize_tags<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    let mut tags: Vec<String> = Vec::new();
    for raw in raw {
        let tag = normalize_tag(raw)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

fn check_link(link: &str) -> Result<(), Error> {
    let allowed = ["https://", "http://", "mailto:"];
    if link.len() > MAX_LINK_LEN
        || !allowed.iter().any(|scheme| link.starts_with(scheme))
        || link.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::BadField {
            field: "links",
            reason: format!("{link:?} is not an http(s) or mailto link without spaces"),
        });
    }
    Ok(())
}

/// A reply's body: Markdown text. The entry it answers is the header's `reply-to` reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
}

impl Reply {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode("reply body", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let reply: Reply = codec::decode("reply body", bytes)?;
        reply.check()?;
        Ok(reply)
    }

    fn check(&self) -> Result<(), Error> {
        let reason = if self.text.trim().is_empty() {
            "must not be empty".to_string()
        } else if self.text.len() > MAX_REPLY_LEN {
            format!("is over {MAX_REPLY_LEN} bytes")
        } else {
            return Ok(());
        };
        Err(Error::BadField {
            field: "reply text",
            reason,
        })
    }
}

/// What a response says. Support, not applause: there is no "like", and the types are about
/// what the reader will do with the entry. Unknown codes are kept, as with kinds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResponseType(pub u8);

impl ResponseType {
    pub const THANK_YOU: ResponseType = ResponseType(1);
    pub const ME_TOO: ResponseType = ResponseType(2);
    pub const THIS_HELPED_US: ResponseType = ResponseType(3);
    pub const CHALLENGE: ResponseType = ResponseType(4);
    pub const OFFER_TO_TALK: ResponseType = ResponseType(5);

    /// The known types with their command-line names and their plain-language labels.
    pub const ALL: [(ResponseType, &'static str, &'static str); 5] = [
        (ResponseType::THANK_YOU, "thank-you", "Thank you"),
        (
            ResponseType::ME_TOO,
            "me-too",
            "Me too: this happened to us",
        ),
        (
            ResponseType::THIS_HELPED_US,
            "this-helped-us",
            "This helped us",
        ),
        (ResponseType::CHALLENGE, "challenge", "A friendly challenge"),
        (
            ResponseType::OFFER_TO_TALK,
            "offer-to-talk",
            "Happy to talk about it",
        ),
    ];

    pub fn name(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(kind, _, _)| *kind == self)
            .map(|(_, name, _)| *name)
    }

    pub fn label(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(kind, _, _)| *kind == self)
            .map(|(_, _, label)| *label)
    }

    pub fn from_name(name: &str) -> Option<ResponseType> {
        Self::ALL
            .iter()
            .find(|(_, known, _)| *known == name)
            .map(|(kind, _, _)| *kind)
    }
}

impl std::fmt::Display for ResponseType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "response-{}", self.0),
        }
    }
}

impl std::fmt::Debug for ResponseType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResponseType({self})")
    }
}

/// A typed response's body. The entry it responds to is the header's `responds-to` reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub kind: ResponseType,
    /// An optional short note, plain text.
    pub note: String,
}

impl Response {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode("response body", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let response: Response = codec::decode("response body", bytes)?;
        response.check()?;
        Ok(response)
    }

    fn check(&self) -> Result<(), Error> {
        if self.note.len() > MAX_NOTE_LEN {
            return Err(Error::BadField {
                field: "response note",
                reason: format!("is over {MAX_NOTE_LEN} bytes"),
            });
        }
        Ok(())
    }
}

/// A retraction's body: why the author withdrew the entry named by the header's `retracts`
/// reference. Nodes then drop that entry's body and keep its signed header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retraction {
    pub reason: String,
}

impl Retraction {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode("retraction body", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let retraction: Retraction = codec::decode("retraction body", bytes)?;
        retraction.check()?;
        Ok(retraction)
    }

    fn check(&self) -> Result<(), Error> {
        let reason = if self.reason.trim().is_empty() {
            "must not be empty: say why, so readers understand".to_string()
        } else if self.reason.len() > MAX_NOTE_LEN {
            format!("is over {MAX_NOTE_LEN} bytes")
        } else {
            return Ok(());
        };
        Err(Error::BadField {
            field: "retraction reason",
            reason,
        })
    }
}

/// A revocation's body: the organisation removes a member. The member's entries up to and
/// including `last_valid_seq` stay valid (shown as by a former member); later ones are refused
/// by every node that holds the revocation. Only the organisation's own key may sign one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub member: crate::MemberId,
    /// The last of the member's sequence numbers that stays valid; 0 revokes everything.
    pub last_valid_seq: u64,
    /// Why, for readers (may be empty).
    pub reason: String,
}

impl Revocation {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode("revocation body", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let revocation: Revocation = codec::decode("revocation body", bytes)?;
        revocation.check()?;
        Ok(revocation)
    }

    fn check(&self) -> Result<(), Error> {
        if self.reason.len() > MAX_NOTE_LEN {
            return Err(Error::BadField {
                field: "revocation reason",
                reason: format!("is over {MAX_NOTE_LEN} bytes"),
            });
        }
        Ok(())
    }
}

/// A profile's body: who an organisation or member is, for readers elsewhere. Signed by the
/// organisation's own key it describes the organisation; by a member's key, that member. The
/// newest profile of an author replaces the earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// A few plain-language sentences.
    pub about: String,
    /// An http(s) address, or empty.
    pub website: String,
    /// How to get in touch (an email address, a phone number), or empty.
    pub contact: String,
}

impl Profile {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode("profile body", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let profile: Profile = codec::decode("profile body", bytes)?;
        profile.check()?;
        Ok(profile)
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: String| Err(Error::BadField { field, reason });
        if self.about.len() > MAX_SUMMARY_LEN {
            return bad("profile about", format!("is over {MAX_SUMMARY_LEN} bytes"));
        }
        if !self.website.is_empty() {
            check_link(&self.website)?;
        }
        if self.contact.len() > MAX_TITLE_LEN || self.contact.chars().any(char::is_control) {
            return bad(
                "profile contact",
                format!("must be one line of at most {MAX_TITLE_LEN} bytes"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_read_in_place_are_the_decoded_storys_tags() {
        let story = Story {
            title: "Title".into(),
            summary: "Summary".into(),
            text: "Text with **Markdown**".into(),
            context: "Context".into(),
            tried: "Tried".into(),
            happened: "Happened".into(),
            learned: "Learned".into(),
            next: "Next".into(),
            tags: vec!["co-production".into(), "rota".into(), "élan".into()],
            language: "cy".into(),
            links: vec![
                "https://example.org/a".into(),
                "mailto:a@example.org".into(),
            ],
        };
        let body = story.encode().expect("valid story");
        assert_eq!(Story::tags_of(&body).expect("tags"), story.tags);
        let untagged = Story {
            tags: Vec::new(),
            ..story
        }
        .encode()
        .expect("valid story");
        assert!(Story::tags_of(&untagged).expect("no tags").is_empty());
        // Not a story body: cut short, or with bytes after it.
        assert!(Story::tags_of(&body[..body.len() - 1]).is_err());
        assert!(Story::tags_of(&[body.as_slice(), &[0]].concat()).is_err());
    }
}
