//! Maps a key path in the config text (`services.db.data[0].password`) to its line, so
//! every config error can say file:line:key. Built once per load from toml_edit's
//! span-preserving parse.

use toml_edit::{ImDocument, Item, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path, printed the way users write it: `services.db.data[0].url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The parsed document plus line starts, for byte offset -> line number.
pub struct SpanIndex {
    doc: ImDocument<String>,
    line_starts: Vec<usize>,
}

impl SpanIndex {
    pub fn parse(text: &str) -> Result<Self, toml_edit::TomlError> {
        let doc = ImDocument::parse(text.to_string())?;
        Ok(SpanIndex {
            doc,
            line_starts: line_starts(text),
        })
    }

    /// 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(&self.line_starts, offset)
    }

    /// The line where `path` is written: the key's line when it has one, else the
    /// value's. Falls back to the nearest ancestor that can be found.
    pub fn line(&self, path: &KeyPath) -> Option<usize> {
        let mut best = None;
        let mut item: Option<Located<'_>> = Some(Located::Item(self.doc.as_item()));
        for seg in &path.0 {
            let Some(current) = item.take() else { break };
            let next = match (current, seg) {
                (Located::Item(Item::Table(t)), Seg::Key(k)) => {
                    if let Some(span) = t.key(k).and_then(|key| key.span()) {
                        best = Some(span.start);
                    }
                    t.get(k).map(Located::Item)
                }
                (
                    Located::Item(Item::Value(Value::InlineTable(t)))
                    | Located::Value(Value::InlineTable(t)),
                    Seg::Key(k),
                ) => {
                    if let Some(span) = t.key(k).and_then(|key| key.span()) {
                        best = Some(span.start);
                    }
                    t.get(k).map(Located::Value)
                }
                (Located::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => a.get(*i).map(|t| {
                    if let Some(span) = t.span() {
                        best = Some(span.start);
                    }
                    Located::Table(t)
                }),
                (Located::Table(t), Seg::Key(k)) => {
                    if let Some(span) = t.key(k).and_then(|key| key.span()) {
                        best = Some(span.start);
                    }
                    t.get(k).map(Located::Item)
                }
                (
                    Located::Item(Item::Value(Value::Array(a))) | Located::Value(Value::Array(a)),
                    Seg::Index(i),
                ) => a.get(*i).map(|v| {
                    if let Some(span) = v.span() {
                        best = Some(span.start);
                    }
                    Located::Value(v)
                }),
                _ => None,
            };
            item = next;
        }
        best.map(|offset| self.line_of(offset))
    }
}

enum Located<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a toml_edit::Table),
}

pub fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

pub fn line_of(line_starts: &[usize], offset: usize) -> usize {
    match line_starts.binary_search(&offset) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let text = "[stack]\nname = \"x\"\n\n[services.db]\nruntime = { kind = \"external\" }\ndata = [\n  { kind = \"postgres\", url = \"u\" },\n  { kind = \"sqlite\", path = \"p\" },\n]\n";
        let idx = SpanIndex::parse(text).unwrap();
        let p = KeyPath::default().key("services").key("db");
        assert_eq!(idx.line(&p.key("runtime").key("kind")), Some(5));
        assert_eq!(idx.line(&p.key("data").index(0).key("url")), Some(7));
        assert_eq!(idx.line(&p.key("data").index(1).key("path")), Some(8));
        assert_eq!(idx.line(&p.key("data").index(1).key("nope")), Some(8));
        assert_eq!(
            idx.line(&KeyPath::default().key("stack").key("name")),
            Some(2)
        );
    }
}
