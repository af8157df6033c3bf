//! Problems found in a configuration, with their TOML path and position, and the deserializer
//! that collects every one of them instead of stopping at the first.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
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
/// serde stops at the first error, so each failing key is removed and the rest deserialized
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
    /// What could be parsed once the failing keys were taken out.
    pub(crate) parsed: Option<T>,
    /// The problems found.
    pub(crate) found: Vec<Problem>,
    /// TOML paths taken out of the document to get there.
    pub(crate) removed: Vec<String>,
}

impl<T> Partial<T> {
    /// Keep of `more` (problems found in the parsed value) those not inside a part that was
    /// taken out: they follow from the removal, not from the file.
    pub(crate) fn add_checks(&mut self, more: Vec<Problem>) {
        let removed = &self.removed;
        self.found.extend(
            more.into_iter()
                .filter(|p| !removed.iter().any(|r| is_within(&p.path, r))),
        );
    }
}

/// Like [`deserialize_all`], but also returns what could be parsed once the failing keys were
/// taken out, so that the value checks can run on the rest and report their problems too.
pub(crate) fn deserialize_partial<T: DeserializeOwned>(
    text: &str,
    file: Option<&Path>,
) -> Partial<T> {
    let done = |parsed, found, removed: &HashSet<String>| Partial {
        parsed,
        found,
        removed: removed.iter().cloned().collect(),
    };
    let (_, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let found = syntax
            .iter()
            .map(|e| {
                let (line, column) = e.span().map(|s| line_col(text, s.start)).unzip();
                Problem {
                    file: file.map(Path::to_path_buf),
                    path: String::new(),
                    line,
                    column,
                    message: e.message().trim().to_string(),
                }
            })
            .collect();
        return done(None, found, &HashSet::new());
    }
    let mut value: toml::Value = match toml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unzip();
            let found = vec![Problem {
                file: file.map(Path::to_path_buf),
                path: String::new(),
                line,
                column,
                message: e.message().trim().to_string(),
            }];
            return done(None, found, &HashSet::new());
        }
    };
    let mut found = Vec::new();
    let mut removed: HashSet<String> = HashSet::new();
    for _ in 0..500 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return done(Some(parsed), found, &removed),
            Err(err) => {
                let segments = segments_of(err.path());
                let message = err.inner().message().trim().to_string();
                let missing = missing_field(&message);
                let path = join(&segments);
                let suppressed = missing.as_ref().is_some_and(|k| {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    removed.contains(&child)
                });
                // What fails where a key was already taken out follows from that removal.
                let follows = removed.iter().any(|r| is_within(&path, r));
                if !suppressed && !follows {
                    found.push(Problem::at(path.clone(), message.clone()));
                }
                // Remove what failed so the next pass finds the next problem.
                let target: Vec<Seg> = match (&missing, message.contains("unknown field")) {
                    (Some(_), _) => segments.clone(),
                    (None, true) => {
                        let mut s = segments.clone();
                        if let Some(k) = unknown_field(&message)
                            && !matches!(s.last(), Some(Seg::Key(last)) if *last == k)
                        {
                            s.push(Seg::Key(k));
                        }
                        s
                    }
                    (None, false) => segments.clone(),
                };
                // Taken out before and still failing (an array element replaced by an empty
                // table): take out what holds it.
                let mut target = target;
                while !target.is_empty() && removed.contains(&join(&target)) {
                    target.pop();
                }
                if target.is_empty() || !remove(&mut value, &target) {
                    break;
                }
                removed.insert(join(&target));
            }
        }
    }
    done(None, found, &removed)
}

/// Fill in file, line and column of problems from their TOML paths.
pub(crate) fn locate(found: Vec<Problem>, text: &str, file: Option<&Path>) -> Problems {
    let doc = DeTable::parse(text).ok();
    let mut out: Vec<Problem> = found
        .into_iter()
        .map(|mut p| {
            if p.file.is_none() {
                p.file = file.map(Path::to_path_buf);
            }
            if p.line.is_none()
                && let Some(start) = doc.as_ref().and_then(|d| span_of(d.get_ref(), &p.path))
            {
                let (l, c) = line_col(text, start);
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

fn remove(value: &mut toml::Value, target: &[Seg]) -> bool {
    let Some((last, parents)) = target.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match (seg, cur) {
            (Seg::Key(k), toml::Value::Table(t)) => match t.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), toml::Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, cur) {
        (Seg::Key(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        // Replace rather than remove, so later indices keep their meaning.
        (Seg::Index(i), toml::Value::Array(a)) if *i < a.len() => {
            a[*i] = toml::Value::Table(toml::Table::new());
            true
        }
        _ => false,
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
    let upto = &text[..offset.min(text.len())];
    let line = upto.matches('\n').count() + 1;
    let col = upto
        .rfind('\n')
        .map_or(upto.chars().count(), |nl| upto[nl + 1..].chars().count())
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

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
