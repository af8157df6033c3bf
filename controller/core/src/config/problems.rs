//! Problems found in a configuration, with their TOML path and position, and the deserializer
//! that collects every one of them instead of stopping at the first.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned};
use toml::de::{DeTable, DeValue};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File it is in, when known.
    pub file: Option<PathBuf>,
    /// TOML path, e.g. `curve.points[2].outdoor_c` (empty for the whole file).
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, for a technician.
    pub message: String,
}

impl Problem {
    /// A problem at a TOML path, position not yet known.
    #[must_use]
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: None,
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A problem with a whole file.
    #[must_use]
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.to_path_buf()),
            path: String::new(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    /// `FILE:LINE:COL: path: message`, leaving out what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
            if let (Some(l), Some(c)) = (self.line, self.column) {
                write!(f, "{l}:{c}:")?;
            }
            write!(f, " ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Deserialize `text` into `T`, reporting every syntax error, unknown key and wrong type.
///
/// serde stops at the first error, so each failing part is taken out and the rest deserialized
/// again until the document passes or nothing more can be learnt.
pub(crate) fn deserialize_all<T: DeserializeOwned>(
    text: &str,
    file: Option<&Path>,
) -> Result<T, Problems> {
    match deserialize_partial(text, file) {
        Partial {
            parsed: Some(parsed),
            found,
            ..
        } if found.is_empty() => Ok(parsed),
        Partial { found, .. } => Err(locate(found, text, file)),
    }
}

/// What [`deserialize_partial`] learnt.
pub(crate) struct Partial<T> {
    /// What could be parsed once the failing parts were taken out.
    pub(crate) parsed: Option<T>,
    /// The problems found, at paths of the file.
    pub(crate) found: Vec<Problem>,
    /// Parts taken out of the document to get there, as paths of the file.
    removed: HashSet<String>,
    /// Where the elements left in arrays that lost some stood in the file.
    origins: Origins,
}

impl<T> Partial<T> {
    /// Add `more`, problems found in the parsed value: their paths are translated to the
    /// file's (an element taken out of an array shifts the later ones), and those that follow
    /// from a part taken out are dropped: inside it, or about an array that lost elements.
    pub(crate) fn add_checks(&mut self, more: Vec<Problem>) {
        for mut p in more {
            if p.path.contains('[') {
                p.path = join(&self.origins.original(&parse_path(&p.path)));
            }
            let follows = self.origins.lost.contains(&p.path)
                || self.removed.iter().any(|r| is_within(&p.path, r));
            if !follows {
                self.found.push(p);
            }
        }
    }
}

/// For each array (by its path in the file) that is shorter now, the index in the file of each
/// element left, in order.
#[derive(Default)]
struct Origins {
    by_array: HashMap<String, Vec<usize>>,
    /// The arrays (paths in the file) that lost elements for good.
    lost: HashSet<String>,
}

impl Origins {
    /// `path`, a path in the document as it is now, as a path in the file.
    fn original(&self, path: &[Seg]) -> Vec<Seg> {
        let mut out = Vec::with_capacity(path.len());
        for seg in path {
            let seg = match seg {
                Seg::Index(i) => Seg::Index(
                    self.by_array
                        .get(&join(&out))
                        .and_then(|left| left.get(*i))
                        .copied()
                        .unwrap_or(*i),
                ),
                Seg::Key(k) => Seg::Key(k.clone()),
            };
            out.push(seg);
        }
        out
    }

    /// Element `index` (as it is now) of the array at `array` (a path in the file), `len`
    /// elements long before, was taken out.
    fn taken_out(&mut self, array: String, len: usize, index: usize) {
        self.lost.insert(array.clone());
        let left = self
            .by_array
            .entry(array)
            .or_insert_with(|| (0..len).collect());
        if index < left.len() {
            left.remove(index);
        }
    }
}

/// Like [`deserialize_all`], but also returns what could be parsed once the failing parts were
/// taken out, so that the value checks can run on the rest and report their problems too.
///
/// Each pass finds the first failure; it is reported at its path in the file, unless it only
/// follows from an earlier removal (a field reported missing that was taken out), and what
/// failed is taken out: the key, the array element, or the table missing a field. An element
/// taken out of an array shifts the later ones, so paths are translated back to the file's.
/// Every failing pass takes something out, so the passes end.
pub(crate) fn deserialize_partial<T: DeserializeOwned>(
    text: &str,
    file: Option<&Path>,
) -> Partial<T> {
    let failed = |found| Partial {
        parsed: None,
        found,
        removed: HashSet::new(),
        origins: Origins::default(),
    };
    let (_, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let index = LineIndex::new(text);
        let found = syntax
            .iter()
            .map(|e| {
                let (line, column) = e.span().map(|s| index.line_col(s.start)).unzip();
                Problem {
                    file: file.map(Path::to_path_buf),
                    path: String::new(),
                    line,
                    column,
                    message: e.message().trim().to_string(),
                }
            })
            .collect();
        return failed(found);
    }
    let mut value: toml::Value = match toml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unzip();
            return failed(vec![Problem {
                file: file.map(Path::to_path_buf),
                path: String::new(),
                line,
                column,
                message: e.message().trim().to_string(),
            }]);
        }
    };
    let mut partial = failed(Vec::new());
    // Paths in the file of what holds a part taken out.
    let mut holds_removed: HashSet<String> = HashSet::new();
    let mut aside = SetAside::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(Borrowed(&value)) {
            Ok(parsed) if aside.is_empty() => {
                partial.parsed = Some(parsed);
                return partial;
            }
            Ok(_) => {
                put_back(&mut value, &mut partial.origins, std::mem::take(&mut aside));
                continue;
            }
            Err(err) => err,
        };
        let mut segments = segments_of(err.path());
        set_aside(&mut value, &mut partial.origins, &mut segments, &mut aside);
        let message = err.inner().message().trim().to_string();
        let missing = missing_field(&message);
        let in_file = partial.origins.original(&segments);
        let path = join(&in_file);
        let unknown = unknown_field(&message);
        let follows = match (&missing, &unknown) {
            // A field taken out before and now missing follows from that removal.
            (Some(k), _) => {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                partial.removed.contains(&child)
            }
            (None, Some(_)) => false,
            // Any other failure of what lost a part (an array now too short) comes after its
            // parts were read, so it may follow from that removal.
            (None, None) => holds_removed.contains(&path),
        };
        if !follows {
            partial.found.push(Problem::at(path, message.clone()));
        }
        // Take out what failed so the next pass finds the next problem: the table missing a
        // field, the unknown key, or the failing value.
        let mut target = segments;
        if missing.is_none()
            && let Some(k) = unknown
            && !matches!(target.last(), Some(Seg::Key(last)) if *last == k)
        {
            target.push(Seg::Key(k));
        }
        let target_in_file = partial.origins.original(&target);
        match remove(&mut value, &target) {
            Some(Taken::Key) => {}
            Some(Taken::Element { index, len }) => {
                let array = partial.origins.original(&target[..target.len() - 1]);
                partial.origins.taken_out(join(&array), len, index);
            }
            None => return partial,
        }
        for outer in 0..target_in_file.len() {
            holds_removed.insert(join(&target_in_file[..outer]));
        }
        partial.removed.insert(join(&target_in_file));
    }
}

/// Deserializes a TOML value in place, as its own deserializer does, cloning only the leaves
/// and enums it reaches: a pass that stops at an early failure costs little however long the
/// rest of the document is.
struct Borrowed<'a>(&'a toml::Value);

impl<'de> de::Deserializer<'de> for Borrowed<'_> {
    type Error = toml::de::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            toml::Value::Array(items) => {
                let mut seq = BorrowedSeq(items.iter());
                let out = visitor.visit_seq(&mut seq)?;
                if seq.0.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(
                        items.len(),
                        &"fewer elements in array",
                    ))
                }
            }
            toml::Value::Table(table) => {
                let mut map = BorrowedMap {
                    entries: table.iter(),
                    value: None,
                };
                let out = visitor.visit_map(&mut map)?;
                if map.entries.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(
                        table.len(),
                        &"fewer elements in map",
                    ))
                }
            }
            leaf => leaf.clone().deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.clone().deserialize_enum(name, variants, visitor)
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            toml::Value::Table(_) => self.deserialize_any(visitor),
            other => other.clone().deserialize_struct(name, fields, visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 char str string unit seq
        bytes byte_buf map unit_struct tuple_struct tuple ignored_any identifier
    }
}

/// The elements of a borrowed array.
struct BorrowedSeq<'a>(std::slice::Iter<'a, toml::Value>);

impl<'de> de::SeqAccess<'de> for BorrowedSeq<'_> {
    type Error = toml::de::Error;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Borrowed(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a borrowed table.
struct BorrowedMap<'a> {
    entries: toml::map::Iter<'a, String, toml::Value>,
    value: Option<&'a toml::Value>,
}

impl<'de> de::MapAccess<'de> for BorrowedMap<'_> {
    type Error = toml::de::Error;

    fn next_key_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(toml::Value::String(key.clone())).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Borrowed(value)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Fill in file, line and column of problems from their TOML paths.
pub(crate) fn locate(found: Vec<Problem>, text: &str, file: Option<&Path>) -> Problems {
    let doc = DeTable::parse(text).ok();
    let index = LineIndex::new(text);
    let mut out: Vec<Problem> = found
        .into_iter()
        .map(|mut p| {
            if p.file.is_none() {
                p.file = file.map(Path::to_path_buf);
            }
            if p.line.is_none()
                && let Some(start) = doc.as_ref().and_then(|d| span_of(d.get_ref(), &p.path))
            {
                let (l, c) = index.line_col(start);
                p.line = Some(l);
                p.column = Some(c);
            }
            p
        })
        .collect();
    out.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.column.unwrap_or(0)));
    Problems(out)
}

/// Whether the TOML path `path` is `outer` or lies inside it.
fn is_within(path: &str, outer: &str) -> bool {
    path.strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments_of(path: &serde_path_to_error::Path) -> Vec<Seg> {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            _ => None,
        })
        .collect()
}

fn join(segments: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segments {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                out.push(Seg::Key(rest[..b].to_string()));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                if let Ok(i) = stripped[..end].parse() {
                    out.push(Seg::Index(i));
                }
                rest = &stripped[end + 1..];
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

fn backtick_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix('`')?;
    Some(rest[..rest.find('`')?].to_string())
}

fn missing_field(message: &str) -> Option<String> {
    backtick_after(message, "missing field ")
}

fn unknown_field(message: &str) -> Option<String> {
    backtick_after(message, "unknown field ")
}

/// Arrays long enough to gain from it, by path, from which the elements before a failing one
/// (read without failure) are set aside until the rest passes: later passes do not read them
/// again, and a long array with many failures takes passes each as short as the first. (A type
/// wanting an array of a fixed length that long would see it too short meanwhile.)
const SET_ASIDE_FROM_LEN: usize = 64;

/// Elements set aside: for each array path, its segments and the elements with their index in
/// the file.
type SetAside = HashMap<String, (Vec<Seg>, Vec<(usize, toml::Value)>)>;

/// Set aside the elements before the failing one of the outermost array on the failing `path`
/// (a path in the document as it is now, updated), when that array is long.
fn set_aside(
    value: &mut toml::Value,
    origins: &mut Origins,
    path: &mut [Seg],
    aside: &mut SetAside,
) {
    let Some(at) = path.iter().position(|s| matches!(s, Seg::Index(_))) else {
        return;
    };
    let Seg::Index(failing) = path[at] else {
        return;
    };
    let Some(toml::Value::Array(items)) = value_at_mut(value, &path[..at]) else {
        return;
    };
    if failing == 0 || failing >= items.len() || items.len() < SET_ASIDE_FROM_LEN {
        return;
    }
    let array = join(&path[..at]);
    let len = items.len();
    let left = origins
        .by_array
        .entry(array.clone())
        .or_insert_with(|| (0..len).collect());
    let (_, kept) = aside
        .entry(array)
        .or_insert_with(|| (path[..at].to_vec(), Vec::new()));
    kept.extend(left.drain(..failing).zip(items.drain(..failing)));
    path[at] = Seg::Index(0);
}

/// Put the elements set aside back in their places.
fn put_back(value: &mut toml::Value, origins: &mut Origins, aside: SetAside) {
    for (array, (path, mut kept)) in aside {
        let Some(toml::Value::Array(items)) = value_at_mut(value, &path) else {
            continue;
        };
        let left = origins.by_array.entry(array).or_default();
        kept.extend(left.drain(..).zip(items.drain(..)));
        kept.sort_by_key(|(index, _)| *index);
        (*left, *items) = kept.into_iter().unzip();
    }
}

/// The value at `path`, if there is one.
fn value_at_mut<'v>(value: &'v mut toml::Value, path: &[Seg]) -> Option<&'v mut toml::Value> {
    let mut cur = value;
    for seg in path {
        cur = match (seg, cur) {
            (Seg::Key(k), toml::Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), toml::Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// What [`remove`] took out.
enum Taken {
    /// A key of a table.
    Key,
    /// Element `index` of an array `len` elements long.
    Element { index: usize, len: usize },
}

/// Take the value at `target` out of `value`; `None` when there is nothing there.
fn remove(value: &mut toml::Value, target: &[Seg]) -> Option<Taken> {
    let (last, parents) = target.split_last()?;
    match (last, value_at_mut(value, parents)?) {
        (Seg::Key(k), toml::Value::Table(t)) => t.remove(k).map(|_| Taken::Key),
        (Seg::Index(i), toml::Value::Array(a)) if *i < a.len() => {
            let len = a.len();
            a.remove(*i);
            Some(Taken::Element { index: *i, len })
        }
        _ => None,
    }
}

/// Byte offset where the value (or key) at `path` starts, as deep as the path can be followed.
fn span_of(doc: &DeTable<'_>, path: &str) -> Option<usize> {
    let segs = parse_path(path);
    let first = match segs.first()? {
        Seg::Key(k) => doc
            .iter()
            .find(|(key, _)| key.get_ref().as_ref() == k.as_str())?,
        Seg::Index(_) => return None,
    };
    let mut best = first.0.span().start;
    let mut cur = first.1;
    for seg in &segs[1..] {
        match (seg, cur.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => {
                let Some((key, v)) = t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                else {
                    break;
                };
                best = key.span().start;
                cur = v;
            }
            (Seg::Index(i), DeValue::Array(a)) => {
                let Some(v) = a.get(*i) else { break };
                best = v.span().start;
                cur = v;
            }
            _ => break,
        }
    }
    Some(best)
}

/// 1-based line and column of the value (or, failing that, the deepest key) at a TOML path
/// such as `curve.points[2].outdoor_c` in `text`; `None` when the text does not parse or the
/// path's first key is not in it. Any TOML file (a scenario, a map) can locate its own
/// problems with it.
#[must_use]
pub fn position_of(text: &str, path: &str) -> Option<(usize, usize)> {
    let doc = DeTable::parse(text).ok()?;
    span_of(doc.get_ref(), path).map(|start| line_col(text, start))
}

/// 1-based line and column of a TOML (or serde) error in `text`, when it carries a position.
#[must_use]
pub fn error_position(text: &str, error: &toml::de::Error) -> Option<(usize, usize)> {
    error.span().map(|s| line_col(text, s.start))
}

/// 1-based line and column (in characters) of a byte offset of `text` (a TOML span's start):
/// for locating problems in any TOML document (configuration, device map, plant scenario).
#[must_use]
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(offset)
}

/// The line starts of a text, found once, so that locating many problems in one text (a
/// garbled file can have hundreds of syntax errors) costs a binary search each, not a scan.
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of each line's first character; the first is 0.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset (clamped to the text).
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before the offset.
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line index agrees with counting by hand at every offset, multi-byte characters,
    /// CRLF line ends and a trailing newline included.
    #[test]
    fn line_index_agrees_with_counting_at_every_offset() {
        for text in [
            "",
            "a",
            "\n",
            "ab\ncd\n",
            "x = \"°C\"\r\ny = 1\n\nz",
            "熱\n站 = 1",
        ] {
            let index = LineIndex::new(text);
            for offset in
                (0..=text.len() + 2).filter(|&o| o > text.len() || text.is_char_boundary(o))
            {
                let upto = &text[..offset.min(text.len())];
                let line = upto.matches('\n').count() + 1;
                let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                assert_eq!(index.line_col(offset), (line, col), "{text:?} at {offset}");
            }
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        n: u8,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        items: Vec<Item>,
        #[serde(default)]
        pair: [u8; 2],
    }

    #[test]
    fn every_element_is_reported_at_its_index_in_the_file() {
        let text = "items = [{ n = \"a\" }, { n = 1 }, { n = 2, bogus = 1 }, { n = 300 }, { n = 4 }]\n\
                    pair = [1, \"x\"]\n";
        let mut partial = deserialize_partial::<Doc>(text, None);
        let paths: Vec<&str> = partial.found.iter().map(|p| p.path.as_str()).collect();
        // The array too short once pair[1] is taken out follows from it: not reported.
        assert_eq!(
            paths,
            ["items[0].n", "items[2].bogus", "items[3].n", "pair[1]"]
        );
        let Some(doc) = &partial.parsed else {
            panic!("the rest parses")
        };
        assert_eq!(doc.items.iter().map(|i| i.n).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(doc.pair, [0, 0], "taken out, so its default");
        // Checks on what is left are reported at the file's index; a check about the array
        // that lost elements, or inside what was taken out, follows from the removal.
        partial.found.clear();
        partial.add_checks(vec![
            Problem::at("items[2].n", "checked"),
            Problem::at("items", "too few"),
            Problem::at("pair", "out of order"),
        ]);
        let paths: Vec<&str> = partial.found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["items[4].n"]);
    }

    #[test]
    fn a_long_array_keeps_its_order_and_indices() {
        let broken = |i: usize| i % 7 == 3 || i > 150;
        let items: Vec<String> = (0..200)
            .map(|i| {
                if broken(i) {
                    format!("{{ n = \"{i}\" }}")
                } else {
                    format!("{{ n = {i} }}")
                }
            })
            .collect();
        let text = format!("items = [{}]\n", items.join(", "));
        let partial = deserialize_partial::<Doc>(&text, None);
        let paths: Vec<String> = partial.found.iter().map(|p| p.path.clone()).collect();
        let wanted: Vec<String> = (0..200)
            .filter(|i| broken(*i))
            .map(|i| format!("items[{i}].n"))
            .collect();
        assert_eq!(paths, wanted);
        let Some(doc) = &partial.parsed else {
            panic!("the rest parses")
        };
        let good: Vec<usize> = (0..200).filter(|i| !broken(*i)).collect();
        let read: Vec<usize> = doc.items.iter().map(|i| usize::from(i.n)).collect();
        assert_eq!(read, good);
        let mut partial = partial;
        partial.found.clear();
        partial.add_checks(vec![Problem::at("items[3].n", "checked")]);
        assert_eq!(partial.found[0].path, format!("items[{}].n", good[3]));
    }

    #[test]
    fn positions_of_paths_and_errors() {
        let text =
            "[site]\nname = \"x\"\n[curve]\npoints = [{ outdoor_c = 1 }, { outdoor_c = 2 }]\n";
        assert_eq!(position_of(text, "site.name"), Some((2, 1)));
        assert_eq!(position_of(text, "curve.points[1]"), Some((4, 30)));
        assert_eq!(position_of(text, "nowhere"), None);
        let err = toml::from_str::<toml::Table>("a = 1\nb = = 2\n").expect_err("bad syntax");
        assert_eq!(
            error_position("a = 1\nb = = 2\n", &err).map(|p| p.0),
            Some(2)
        );
    }
}
