//! Full-text search over entries: a tantivy index derived from the store.
//!
//! The store is the truth; this index is a cache of it that can be thrown away and rebuilt
//! (`cairn reindex`). Every stored entry has exactly one document, keyed by its hex id, so the
//! document count equals the store's entry count when the index is current; entries without
//! text (responses, unknown kinds) get a document with only the id and kind. Stories are
//! searched by title, summary, text and sections, and tags; replies by their text.
//!
//! Only this crate names tantivy. One process at a time may write an index (tantivy keeps a
//! lock file); readers may open it alongside.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cairn_core::{Entry, EntryId, Kind, Reply};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{QueryParser, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// The most hits one search returns.
pub const MAX_HITS: usize = 1_000;
/// The longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 1_000;
/// Memory the index writer may use before it writes a segment.
const WRITER_MEMORY: usize = 16 * 1024 * 1024;
/// The tokenizer: words split on non-alphanumerics, lowercased, English stems.
const TOKENIZER: &str = "cairn_text";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the search index at {path} cannot be opened ({source}); run `cairn reindex` to rebuild \
         it from the store"
    )]
    Open {
        path: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("the search index failed: {0}; `cairn reindex` rebuilds it from the store")]
    Index(#[from] tantivy::TantivyError),
    #[error(
        "the search query is {0} bytes, over the {MAX_QUERY_LEN}-byte limit; search for fewer words"
    )]
    QueryTooLong(usize),
    #[error("this search index was opened read-only; only the node writes it")]
    ReadOnly,
    #[error("could not create the search index directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One result: the entry's id and its relevance score (higher is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: EntryId,
    pub score: f32,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    kind: Field,
    title: Field,
    summary: Field,
    text: Field,
    tags: Field,
}

/// The index, its reader, and (unless opened read-only) its one writer.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
    parser: QueryParser,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("documents", &self.len())
            .field("writable", &self.writer.is_some())
            .finish()
    }
}

impl SearchIndex {
    /// Opens the index in `dir` for writing, creating it if the directory is empty.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Self::open_with(dir, true)
    }

    /// Opens an existing index for searching only, beside a node that may be writing it.
    pub fn open_read_only(dir: &Path) -> Result<Self, Error> {
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, writable: bool) -> Result<Self, Error> {
        let open_error = |source| Error::Open {
            path: dir.to_path_buf(),
            source,
        };
        if writable {
            std::fs::create_dir_all(dir).map_err(|source| Error::Directory {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|err| open_error(tantivy::TantivyError::from(err)))?;
        let index = Index::open_or_create(directory, schema).map_err(open_error)?;
        index.tokenizers().register(
            TOKENIZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(Stemmer::new(Language::English))
                .build(),
        );
        let writer = if writable {
            Some(Mutex::new(
                index
                    .writer_with_num_threads(1, WRITER_MEMORY)
                    .map_err(open_error)?,
            ))
        } else {
            None
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(open_error)?;
        let mut parser = QueryParser::for_index(
            &index,
            vec![fields.title, fields.summary, fields.text, fields.tags],
        );
        parser.set_conjunction_by_default();
        parser.set_field_boost(fields.title, 3.0);
        parser.set_field_boost(fields.tags, 2.0);
        parser.set_field_boost(fields.summary, 1.5);
        Ok(Self {
            reader,
            writer,
            fields,
            parser,
        })
    }

    /// The number of documents searchers see (one per indexed entry).
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds entries (replacing any document they already have). Visible after [`Self::commit`].
    pub fn add<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) -> Result<(), Error> {
        let writer = self.writer()?;
        for entry in entries {
            let id = entry.id().to_string();
            writer.delete_term(Term::from_field_text(self.fields.id, &id));
            writer.add_document(self.document(entry, id))?;
        }
        Ok(())
    }

    /// Adds entries known to have no document yet. This skips the delete a replacement needs,
    /// which tantivy holds in memory until the next commit (about 1 KB each, so a catch-up of
    /// 100,000 entries through [`Self::add`] held about 100 MB). Visible after
    /// [`Self::commit`].
    pub fn add_new<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) -> Result<(), Error> {
        let writer = self.writer()?;
        for entry in entries {
            writer.add_document(self.document(entry, entry.id().to_string()))?;
        }
        Ok(())
    }

    /// Whether a searcher sees a document for this entry.
    pub fn contains(&self, id: &EntryId) -> Result<bool, Error> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, &id.to_string()),
            IndexRecordOption::Basic,
        );
        Ok(self.reader.searcher().search(&query, &Count)? > 0)
    }

    /// The ids of every indexed entry, read from the id field's term dictionaries (fast: no
    /// document is loaded). An id whose documents were all removed may still be listed until
    /// segments merge.
    pub fn ids(&self) -> Result<std::collections::HashSet<EntryId>, Error> {
        let searcher = self.reader.searcher();
        let mut ids = std::collections::HashSet::with_capacity(searcher.num_docs() as usize);
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.id)?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(tantivy::TantivyError::from)?;
            while terms.advance() {
                if let Some(id) = std::str::from_utf8(terms.key())
                    .ok()
                    .and_then(|hex| hex.parse::<EntryId>().ok())
                {
                    ids.insert(id);
                }
            }
        }
        Ok(ids)
    }

    /// Removes an entry's document. Visible after [`Self::commit`].
    pub fn remove(&self, id: &EntryId) -> Result<(), Error> {
        self.writer()?
            .delete_term(Term::from_field_text(self.fields.id, &id.to_string()));
        Ok(())
    }

    /// Removes every document, before a rebuild. Visible after [`Self::commit`].
    pub fn clear(&self) -> Result<(), Error> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// Makes the changes so far durable and visible to searches.
    pub fn commit(&self) -> Result<(), Error> {
        self.writer()?.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Sees changes another process committed (for read-only handles).
    pub fn refresh(&self) -> Result<(), Error> {
        self.reader.reload()?;
        Ok(())
    }

    /// The best `limit` matches for a query, best first. Words must all match; `"exact
    /// phrases"`, `OR`, `-word` and `title:word` work; anything unparseable is read leniently
    /// rather than refused.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, Error> {
        if query.len() > MAX_QUERY_LEN {
            return Err(Error::QueryTooLong(query.len()));
        }
        if query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let (query, _ignored) = self.parser.parse_query_lenient(query);
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(limit.clamp(1, MAX_HITS)).order_by_score(),
        )?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            let id = document
                .get_first(self.fields.id)
                .and_then(|value| value.as_str())
                .and_then(|hex| hex.parse::<EntryId>().ok());
            // A document without a readable id cannot be shown; skip it rather than fail.
            if let Some(id) = id {
                hits.push(Hit { id, score });
            }
        }
        Ok(hits)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        Ok(writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn document(&self, entry: &Entry, id: String) -> TantivyDocument {
        let fields = self.fields;
        let mut document = TantivyDocument::default();
        document.add_text(fields.id, id);
        document.add_u64(fields.kind, u64::from(entry.header().kind.0));
        if let Some(Ok(story)) = entry.story() {
            document.add_text(fields.title, &story.title);
            document.add_text(fields.summary, &story.summary);
            document.add_text(fields.text, &story.text);
            for (_, section) in story.sections() {
                document.add_text(fields.text, section);
            }
            for tag in &story.tags {
                // Tags are searched as words too: "peer-support" matches "peer support".
                document.add_text(fields.tags, tag.replace(['-', '_'], " "));
            }
        } else if entry.header().kind == Kind::REPLY
            && let Some(Ok(reply)) = entry.body().map(Reply::decode)
        {
            document.add_text(fields.text, &reply.text);
        }
        document
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        kind: builder.add_u64_field("kind", INDEXED),
        title: builder.add_text_field("title", text.clone()),
        summary: builder.add_text_field("summary", text.clone()),
        text: builder.add_text_field("text", text.clone()),
        tags: builder.add_text_field("tags", text),
    };
    (builder.build(), fields)
}
