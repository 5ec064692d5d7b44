//! What gathers under an entry: replies in time order, responses grouped by type, the
//! stories that link to it, and its author's retraction. One grouping, shared by the web page and the CLI.

use cairn_core::{Entry, Kind, RefKind, Reply, Response, ResponseType, Retraction};

/// A reply with its decoded text.
#[derive(Debug, Clone)]
pub struct ReplyItem {
    pub entry: Entry,
    pub reply: Reply,
}

/// The responses of one type, oldest first.
#[derive(Debug, Clone)]
pub struct ResponseGroup {
    pub kind: ResponseType,
    pub responses: Vec<(Entry, Response)>,
}

/// Everything that refers to one entry.
#[derive(Debug, Clone, Default)]
pub struct Thread {
    pub replies: Vec<ReplyItem>,
    /// Only types that have responses; known types in their usual order, then unknown ones.
    pub responses: Vec<ResponseGroup>,
    /// Stories that link to the entry, with how.
    pub linked_from: Vec<(RefKind, Entry)>,
    /// The author's retraction of the entry, if they withdrew it.
    pub retraction: Option<(Entry, Retraction)>,
    /// The author's later revisions of the story, oldest first (the last is current).
    pub revisions: Vec<Entry>,
}

impl Thread {
    /// Groups the entries that refer to `target` (as `Store::referring` returns them), oldest
    /// first. Entries whose body cannot be read (not held, unknown kinds) are left out.
    pub fn gather(target: &Entry, related: impl IntoIterator<Item = Entry>) -> Self {
        let (author, target) = (target.header().author, target.id());
        let mut thread = Thread::default();
        for entry in related {
            let Some(how) = entry
                .header()
                .refs
                .iter()
                .find(|r| r.target == target)
                .map(|r| r.kind)
            else {
                continue;
            };
            let kind = entry.header().kind;
            match (how, kind) {
                (RefKind::REPLY_TO, Kind::REPLY) => {
                    if let Some(Ok(reply)) = entry.body().map(Reply::decode) {
                        thread.replies.push(ReplyItem { entry, reply });
                    }
                }
                (RefKind::RESPONDS_TO, Kind::RESPONSE) => {
                    if let Some(Ok(response)) = entry.body().map(Response::decode) {
                        thread.add_response(entry, response);
                    }
                }
                // Only the entry's own author can revise it.
                (RefKind::AMENDS, Kind::AMEND) if entry.header().author == author => {
                    thread.revisions.push(entry);
                }
                // Only the entry's own author can withdraw it.
                (RefKind::RETRACTS, Kind::RETRACT) if entry.header().author == author => {
                    if let Some(Ok(retraction)) = entry.body().map(Retraction::decode) {
                        thread.retraction = Some((entry, retraction));
                    }
                }
                (how, kind) if how.is_story_link() && kind.has_story() => {
                    thread.linked_from.push((how, entry));
                }
                _ => {}
            }
        }
        let order = |kind: ResponseType| {
            ResponseType::ALL
                .iter()
                .position(|(known, _, _)| *known == kind)
                .unwrap_or(usize::MAX)
        };
        thread
            .responses
            .sort_by_key(|group| (order(group.kind), group.kind));
        thread
    }

    fn add_response(&mut self, entry: Entry, response: Response) {
        match self
            .responses
            .iter_mut()
            .find(|group| group.kind == response.kind)
        {
            Some(group) => group.responses.push((entry, response)),
            None => self.responses.push(ResponseGroup {
                kind: response.kind,
                responses: vec![(entry, response)],
            }),
        }
    }
}
