//! The on-disk store-and-forward queue of the platform link.
//!
//! Every message heatctl sends to the platform's MQTT broker is first appended here, in the
//! state directory, and removed only after the broker acknowledged it (QoS 1 `PUBACK`). The
//! MQTT client's own in-memory queue is not relied on: a broker without a session for the
//! client makes it drop its pending messages, and a restart of heatctl loses them anyway.
//!
//! The queue is plain blocking `std::fs` code with a single owner: the platform task runs it
//! off the control cycle (its own thread or `spawn_blocking`), so a slow or full disk never
//! delays control.
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use heatctl::platform_queue::{DiskQueue, NewRecord, QueueOptions};
//! let (mut queue, report) = DiskQueue::open("/var/lib/heatctl/platform-queue".as_ref(), QueueOptions::default())?;
//! for problem in &report.problems {
//!     eprintln!("platform queue: {problem}");
//! }
//! let id = queue.push(NewRecord { topic: "heat/s1/st1/telemetry".into(), payload: b"{}".to_vec(), retain: false })?;
//! for record in queue.pending(16) {
//!     // publish at QoS 1 ...
//!     # let _ = record;
//! }
//! queue.ack(id)?; // when the broker's PUBACK for that publish arrives
//! queue.tick()?; // about once a second: time-based fsync and ack-file write
//! # Ok(()) }
//! ```
//!
//! Ids are unique and increase across restarts. Acks may arrive in any order; the head (the
//! oldest unacknowledged record) advances over contiguous acknowledged records, and a segment
//! file is deleted once all its records are acknowledged (the segment being appended to is
//! kept). [`DiskQueue::pending_from`] lets a sender with messages in flight continue after the
//! last id it handed to the client.
//!
//! # Files
//!
//! The queue owns its directory. It holds append-only segment files and one `ack` file; other
//! files are ignored.
//!
//! **Segment** `NNNNNNNNNNNNNNNNNNNN.seg`, named by the id of its first record (20 decimal
//! digits, so names sort like ids). All integers little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `HCTLQSEG` |
//! | 8 | 4 | format version, `1` |
//! | 12 | 4 | reserved, `0` |
//! | 16 | ... | records, back to back |
//!
//! **Record**: an 8-byte header and a body.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | body length `n` (u32), at least 19, at most [`MAX_BODY_BYTES`] |
//! | 4 | 4 | CRC-32 (IEEE, as zlib) of the `n` body bytes |
//! | 8 + 0 | 8 | record id (u64) |
//! | 8 + 8 | 8 | enqueue time, Unix seconds (f64 bits) |
//! | 8 + 16 | 1 | flags: bit 0 retain; other bits reserved (written 0, ignored when read) |
//! | 8 + 17 | 2 | topic length `t` (u16) |
//! | 8 + 19 | t | topic, UTF-8 |
//! | 8 + 19 + t | n - 19 - t | payload |
//!
//! A record thus takes 27 bytes plus its topic and payload on disk: a 1.5 KB telemetry message
//! on a 30-byte topic takes 1557 bytes ([`record_disk_bytes`]).
//!
//! **`ack`** (52 bytes, replaced atomically: written to `ack.tmp`, fsynced, renamed over `ack`,
//! directory fsynced): magic `HCTLQACK`, version u32 `1`, reserved u32, then u64s `head_id`
//! (every id below it is acknowledged or dropped), `next_id` (the next id to assign),
//! `dropped_total`, `acked_total`, and a CRC-32 (u32) of the 48 bytes before it. A missing or
//! damaged `ack` file makes the queue resend what is still on disk (duplicates, never losses).
//!
//! # Recovery at open
//!
//! Every segment is read and every record checked (length within bounds and within the file,
//! CRC, body fields, ids strictly increasing). Parsing never trusts a length beyond the file
//! size or [`MAX_BODY_BYTES`], so any bytes give skipped records, never a panic or a huge
//! allocation.
//!
//! - A damaged record whose length field still leads to a valid record is skipped alone and
//!   counted; reading goes on after it.
//! - Otherwise the rest of that segment cannot be trusted: it is skipped and counted as one
//!   record (a torn tail after a power cut: a record cut in half, zeros, garbage). The last
//!   segment is truncated there, so new records follow the last good one; an older segment is
//!   left as it is and reading goes on with the next segment.
//! - A segment file shorter than its header (a crash while creating it) is removed; one with a
//!   wrong magic or an unknown version is renamed to `NAME.seg.bad`, kept for inspection and
//!   no longer read.
//!
//! Counted damage is in [`QueueStats::torn_records_skipped`] (since this open; damage left in
//! an older segment is counted again at the next open) and described in
//! [`OpenReport::problems`]. A record that fails its check when read back later for sending is
//! skipped and counted the same way.
//!
//! # Bounded size
//!
//! [`QueueStats::bytes`] is the size of the segment files. When a push would take it over
//! `max_bytes`, whole oldest segments are deleted first, and their unacknowledged records are
//! counted in `dropped_total` (persisted in the `ack` file). A single record larger than
//! [`MAX_PAYLOAD_BYTES`], with a topic over 65535 bytes, or not fitting `max_bytes` at all is
//! refused with [`io::ErrorKind::InvalidInput`] and nothing is dropped.
//!
//! # Durability and the fsync policy
//!
//! Each record is written with one `write` call straight to the file (no user-space buffer),
//! so once [`DiskQueue::push`] returned, a crash or SIGKILL of heatctl loses nothing: the
//! kernel has the data. What a power cut can lose is what was not yet fsynced, and
//! [`FsyncPolicy`] chooses that window:
//!
//! - [`FsyncPolicy::Every`]`(n)`: fsync after every `n`-th record (`Every(1)`: each record;
//!   [`DiskQueue::tick`] also flushes a partial batch older than a second);
//! - [`FsyncPolicy::Interval`]`(d)` (the default, `d` = 1 s): fsync at the first push or
//!   [`DiskQueue::tick`] at least `d` after the previous fsync, so a burst costs one fsync and
//!   a power cut loses at most the last `d` (plus the tick period) of records;
//! - [`FsyncPolicy::Never`]: the queue never fsyncs by itself (the kernel writes back within
//!   about 30 s); for tmpfs or tests. [`DiskQueue::sync`] still fsyncs when called.
//!
//! A segment closed for a new one is fsynced with the next fsync of the policy.
//!
//! Why once a second by default: gateways run on eMMC or SD cards whose wear is driven by the
//! number of small synchronous writes (each fsync commits at least a flash page and an ext4
//! journal block, several KiB, whatever the record size). Telemetry once a minute costs little
//! under any policy, but alarms, audit records and command acks come in bursts; per-record
//! fsync would turn a burst of 100 records into 100 or more flash commits, while one per second
//! bounds the worst case at one commit per second. The price is a loss window of about a
//! second of records at a power cut, which the platform sees as a gap in sequence numbers;
//! a record cut in half by the power cut is detected and dropped (see above).
//!
//! The acknowledged position is persisted in the `ack` file at most once a second (on an ack
//! or [`DiskQueue::tick`]), whenever a segment is deleted or dropped, at [`DiskQueue::sync`],
//! and when the queue is dropped; it is fsynced unless the policy is `Never`. After a crash the
//! records acknowledged since the last write (about a second) are sent again, which QoS 1
//! allows: the payloads carry their own sequence numbers for the platform to discard
//! duplicates.
//!
//! One process owns the directory at a time; the queue takes no lock.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"HCTLQSEG";
/// The first 8 bytes of the `ack` file.
pub const ACK_MAGIC: [u8; 8] = *b"HCTLQACK";
/// The on-disk format version written in segment and `ack` headers.
pub const FORMAT_VERSION: u32 = 1;
/// Size of a segment file's header.
pub const SEGMENT_HEADER_BYTES: u64 = 16;
/// Size of a record's header (body length and CRC).
pub const RECORD_HEADER_BYTES: u64 = 8;
/// The largest payload a record may carry.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// The longest topic a record may carry (MQTT's own limit).
pub const MAX_TOPIC_BYTES: usize = u16::MAX as usize;
/// The largest record body: fixed fields, the longest topic and the largest payload.
pub const MAX_BODY_BYTES: usize = BODY_FIXED_BYTES + MAX_TOPIC_BYTES + MAX_PAYLOAD_BYTES;

/// Id, time, flags and topic length.
const BODY_FIXED_BYTES: usize = 19;
const ACK_FILE: &str = "ack";
/// The queue's name in alarm 702 and the log.
const WRITER: &str = "platform queue";
const ACK_TMP_FILE: &str = "ack.tmp";
const ACK_FILE_BYTES: usize = 52;
const SEGMENT_SUFFIX: &str = ".seg";
const FLAG_RETAIN: u8 = 1;
/// The `ack` file is rewritten at most this often on acks alone.
const ACK_WRITE_INTERVAL: Duration = Duration::from_secs(1);
/// With `Every(n)`, `tick` flushes a partial batch at least this old.
const PARTIAL_BATCH_AGE: Duration = Duration::from_secs(1);

/// Bytes one record takes on disk: header, fixed body fields, topic and payload.
pub fn record_disk_bytes(topic_len: usize, payload_len: usize) -> u64 {
    RECORD_HEADER_BYTES + (BODY_FIXED_BYTES + topic_len + payload_len) as u64
}

/// When the queue fsyncs its segment files (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync after every `n`-th record (`0` counts as `1`).
    Every(u32),
    /// fsync at the first push or tick at least this long after the previous fsync.
    Interval(Duration),
    /// Never fsync on its own; only [`DiskQueue::sync`] does.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// Size limits and the fsync policy of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Cap on the segment files' total size; the oldest segments are dropped beyond it.
    pub max_bytes: u64,
    /// A new segment is started when a record would take the current one past this size.
    /// Must be at most `max_bytes` (a few segments per cap keeps the dropping fine-grained).
    pub segment_bytes: u64,
    /// When data is fsynced.
    pub fsync: FsyncPolicy,
}

impl Default for QueueOptions {
    /// 64 MiB in 1 MiB segments (about a month of once-a-minute 1.5 KB telemetry),
    /// fsync at most once a second.
    fn default() -> Self {
        QueueOptions {
            max_bytes: 64 << 20,
            segment_bytes: 1 << 20,
            fsync: FsyncPolicy::default(),
        }
    }
}

/// A message to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecord {
    /// Full MQTT topic.
    pub topic: String,
    /// Message body.
    pub payload: Vec<u8>,
    /// Publish with the MQTT retain flag.
    pub retain: bool,
}

/// An enqueued message, as read back for sending.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The queue's id: unique, increasing across restarts; pass it to [`DiskQueue::ack`].
    pub id: u64,
    /// When it was enqueued (Unix seconds).
    pub enqueued_unix_s: f64,
    /// Full MQTT topic.
    pub topic: String,
    /// Message body.
    pub payload: Vec<u8>,
    /// Publish with the MQTT retain flag.
    pub retain: bool,
}

/// Counters of a queue.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct QueueStats {
    /// Records waiting for an acknowledgement ([`DiskQueue::len`]).
    pub records: usize,
    /// Size of the segment files ([`DiskQueue::bytes`]).
    pub bytes: u64,
    /// Number of segment files.
    pub segments: usize,
    /// Unacknowledged records dropped to stay under the cap (persisted across restarts).
    pub dropped_total: u64,
    /// Damaged records skipped since this open (a damaged tail counts as one).
    pub torn_records_skipped: u64,
    /// Records acknowledged (persisted across restarts).
    pub acked_total: u64,
    /// Records pushed since this open.
    pub pushed_since_open: u64,
    /// fsync or ack-file failures since this open (each also logged).
    pub sync_errors: u64,
    /// The id the next push gets.
    pub next_id: u64,
    /// Enqueue time of the oldest unacknowledged record.
    pub oldest_enqueued_unix_s: Option<f64>,
}

/// What [`DiskQueue::open`] found and repaired.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OpenReport {
    /// Segment files in use after the open.
    pub segments: usize,
    /// Unacknowledged records found.
    pub records: usize,
    /// The id the next push gets.
    pub next_id: u64,
    /// Damaged records skipped (a damaged tail counts as one).
    pub torn_records_skipped: u64,
    /// Bytes cut off the end of the last segment.
    pub bytes_truncated: u64,
    /// Segment files removed: fully acknowledged, or shorter than a header.
    pub files_removed: usize,
    /// Segment files with a foreign header, renamed to `*.seg.bad`.
    pub files_set_aside: usize,
    /// Unacknowledged records dropped because the queue was over its cap.
    pub dropped_at_open: u64,
    /// One sentence per anomaly, for the log.
    pub problems: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: u64,
    segment: u64,
    offset: u64,
    len: u32,
    enqueued_unix_s: f64,
}

#[derive(Debug)]
struct Segment {
    first_id: u64,
    len: u64,
}

/// The persisted part of the `ack` file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AckState {
    head_id: u64,
    next_id: u64,
    dropped_total: u64,
    acked_total: u64,
}

/// A decoded record body.
struct Decoded<'a> {
    id: u64,
    enqueued_unix_s: f64,
    retain: bool,
    topic: &'a str,
    payload: &'a [u8],
}

/// The store-and-forward queue (see the module documentation).
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    opts: QueueOptions,
    /// Oldest first; the last one is the segment appended to.
    segments: VecDeque<Segment>,
    /// Append handle of the last segment; `None`: the next push starts a new segment.
    active: Option<File>,
    /// Closed segments with writes not yet fsynced (synced with the next fsync).
    closed_unsynced: Vec<File>,
    /// Records not yet passed by the head, oldest first; the first one is never acknowledged.
    entries: VecDeque<Entry>,
    /// Acknowledged ids the head has not reached yet.
    acked_ahead: BTreeSet<u64>,
    next_id: u64,
    bytes: u64,
    dropped_total: u64,
    acked_total: u64,
    torn_skipped: u64,
    pushed: u64,
    sync_errors: u64,
    unsynced_records: u32,
    data_dirty: bool,
    dir_dirty: bool,
    last_fsync: Instant,
    ack_dirty: bool,
    last_ack_write: Instant,
    scratch: Vec<u8>,
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn segment_name(first_id: u64) -> String {
    format!("{first_id:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks a body's fields (its CRC is checked by the caller).
fn decode_body(body: &[u8]) -> Option<Decoded<'_>> {
    if body.len() < BODY_FIXED_BYTES {
        return None;
    }
    let topic_len = usize::from(u16_at(body, 17));
    let topic_end = BODY_FIXED_BYTES + topic_len;
    if topic_end > body.len() {
        return None;
    }
    let topic = std::str::from_utf8(&body[BODY_FIXED_BYTES..topic_end]).ok()?;
    Some(Decoded {
        id: u64_at(body, 0),
        enqueued_unix_s: f64::from_bits(u64_at(body, 8)),
        retain: body[16] & FLAG_RETAIN != 0,
        topic,
        payload: &body[topic_end..],
    })
}

/// Reads the record at `pos` of a file of `file_len` bytes. `Ok(None)`: the bytes there are
/// not a valid record (torn, implausible length, CRC, fields); `Err`: I/O failed.
fn read_record_at(
    file: &mut File,
    pos: u64,
    file_len: u64,
    body: &mut Vec<u8>,
) -> io::Result<Option<(u32, u32)>> {
    if file_len.saturating_sub(pos) < RECORD_HEADER_BYTES {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(pos))?;
    let mut header = [0u8; RECORD_HEADER_BYTES as usize];
    file.read_exact(&mut header)?;
    let len = u32_at(&header, 0);
    let crc = u32_at(&header, 4);
    let n = len as usize;
    if !(BODY_FIXED_BYTES..=MAX_BODY_BYTES).contains(&n)
        || pos + RECORD_HEADER_BYTES + u64::from(len) > file_len
    {
        return Ok(None);
    }
    body.clear();
    body.resize(n, 0);
    file.read_exact(body)?;
    if crc32fast::hash(body) != crc || decode_body(body).is_none() {
        return Ok(None);
    }
    Ok(Some((len, crc)))
}

/// What scanning one segment file at open gave.
struct Scanned {
    /// The file's size after any truncation.
    len: u64,
    entries: Vec<Entry>,
    last_id: Option<u64>,
    /// A damaged tail was cut off (it may have held the record with the next id).
    truncated: bool,
}

enum ScanOutcome {
    Kept(Scanned),
    Removed,
    SetAside,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_ack_file(path: &Path) -> io::Result<Option<Result<AckState, String>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() != ACK_FILE_BYTES {
        return Ok(Some(Err(format!(
            "ack file has {} bytes, expected {ACK_FILE_BYTES}",
            bytes.len()
        ))));
    }
    if bytes[..8] != ACK_MAGIC || u32_at(&bytes, 8) != FORMAT_VERSION {
        return Ok(Some(Err("ack file has a foreign header".into())));
    }
    if crc32fast::hash(&bytes[..48]) != u32_at(&bytes, 48) {
        return Ok(Some(Err("ack file fails its CRC".into())));
    }
    Ok(Some(Ok(AckState {
        head_id: u64_at(&bytes, 16),
        next_id: u64_at(&bytes, 24),
        dropped_total: u64_at(&bytes, 32),
        acked_total: u64_at(&bytes, 40),
    })))
}

impl DiskQueue {
    /// Opens (or creates) the queue in `dir`, reading every segment and repairing a torn tail
    /// (see the module documentation). Fails on bad options and on I/O errors other than
    /// damaged contents.
    pub fn open(dir: &Path, opts: QueueOptions) -> io::Result<(DiskQueue, OpenReport)> {
        let min_segment = SEGMENT_HEADER_BYTES + record_disk_bytes(0, 0);
        if opts.segment_bytes < min_segment {
            return Err(invalid_input(format!(
                "segment_bytes {} is below the minimum {min_segment}",
                opts.segment_bytes
            )));
        }
        if opts.max_bytes < opts.segment_bytes {
            return Err(invalid_input(format!(
                "max_bytes {} is below segment_bytes {}",
                opts.max_bytes, opts.segment_bytes
            )));
        }
        fs::create_dir_all(dir)?;
        let mut report = OpenReport::default();
        match fs::remove_file(dir.join(ACK_TMP_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let ack = match read_ack_file(&dir.join(ACK_FILE))? {
            None => AckState::default(),
            Some(Ok(state)) => state,
            Some(Err(why)) => {
                report
                    .problems
                    .push(format!("{why}: every record on disk will be sent again"));
                AckState::default()
            }
        };

        let mut names = Vec::new();
        for item in fs::read_dir(dir)? {
            let item = item?;
            if let Some(first_id) = item.file_name().to_str().and_then(parse_segment_name)
                && item.file_type()?.is_file()
            {
                names.push(first_id);
            }
        }
        names.sort_unstable();

        let mut queue = DiskQueue {
            dir: dir.to_path_buf(),
            opts,
            segments: VecDeque::new(),
            active: None,
            closed_unsynced: Vec::new(),
            entries: VecDeque::new(),
            acked_ahead: BTreeSet::new(),
            next_id: ack.next_id.max(ack.head_id),
            bytes: 0,
            dropped_total: ack.dropped_total,
            acked_total: ack.acked_total,
            torn_skipped: 0,
            pushed: 0,
            sync_errors: 0,
            unsynced_records: 0,
            data_dirty: false,
            dir_dirty: false,
            last_fsync: Instant::now(),
            ack_dirty: false,
            last_ack_write: Instant::now(),
            scratch: Vec::new(),
        };

        let mut prev_id: Option<u64> = None;
        let count = names.len();
        let mut last_kept = false;
        for (i, first_id) in names.into_iter().enumerate() {
            let is_last = i + 1 == count;
            queue.next_id = queue.next_id.max(first_id);
            match queue.scan_segment(first_id, is_last, ack.head_id, &mut prev_id, &mut report)? {
                ScanOutcome::Removed => {
                    report.files_removed += 1;
                    queue.dir_dirty = true;
                }
                ScanOutcome::SetAside => {
                    report.files_set_aside += 1;
                    queue.dir_dirty = true;
                }
                ScanOutcome::Kept(scanned) => {
                    let after_last = scanned.last_id.map_or(first_id, |id| id.saturating_add(1));
                    queue.next_id = queue.next_id.max(after_last);
                    if scanned.truncated {
                        // The cut record may have been sent before the power cut: its id is
                        // not given to another record.
                        queue.next_id = queue.next_id.max(after_last.saturating_add(1));
                    }
                    let fully_acked = scanned.entries.is_empty();
                    if fully_acked && !is_last {
                        fs::remove_file(queue.segment_path(first_id))?;
                        report.files_removed += 1;
                        queue.dir_dirty = true;
                        continue;
                    }
                    queue.bytes += scanned.len;
                    queue.entries.extend(scanned.entries);
                    queue.segments.push_back(Segment {
                        first_id,
                        len: scanned.len,
                    });
                    last_kept = is_last;
                }
            }
        }
        if last_kept && let Some(seg) = queue.segments.back() {
            let path = queue.segment_path(seg.first_id);
            queue.active = Some(OpenOptions::new().append(true).open(path)?);
        }
        queue.torn_skipped = report.torn_records_skipped;

        let before = queue.dropped_total;
        while queue.bytes > queue.opts.max_bytes && queue.segments.len() > 1 {
            queue.drop_oldest()?;
        }
        report.dropped_at_open = queue.dropped_total - before;
        if report.dropped_at_open > 0 {
            report.problems.push(format!(
                "{} unacknowledged records dropped: the queue was over its cap of {} bytes",
                report.dropped_at_open, queue.opts.max_bytes
            ));
        }
        // The state as found (head, next id, counters) is persisted at once.
        queue.write_ack(queue.opts.fsync != FsyncPolicy::Never)?;
        if queue.dir_dirty && queue.opts.fsync != FsyncPolicy::Never {
            sync_dir(&queue.dir)?;
            queue.dir_dirty = false;
        }
        report.segments = queue.segments.len();
        report.records = queue.len();
        report.next_id = queue.next_id;
        Ok((queue, report))
    }

    fn segment_path(&self, first_id: u64) -> PathBuf {
        self.dir.join(segment_name(first_id))
    }

    /// Reads one segment at open: records at or above `head_id` become entries.
    fn scan_segment(
        &self,
        first_id: u64,
        is_last: bool,
        head_id: u64,
        prev_id: &mut Option<u64>,
        report: &mut OpenReport,
    ) -> io::Result<ScanOutcome> {
        let path = self.segment_path(first_id);
        let name = segment_name(first_id);
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        let mut file_len = file.metadata()?.len();
        if file_len < SEGMENT_HEADER_BYTES {
            drop(file);
            fs::remove_file(&path)?;
            report.problems.push(format!(
                "{name}: {file_len} bytes, shorter than a header (cut while created); removed"
            ));
            return Ok(ScanOutcome::Removed);
        }
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        file.read_exact(&mut header)?;
        if header[..8] != SEGMENT_MAGIC || u32_at(&header, 8) != FORMAT_VERSION {
            drop(file);
            let mut bad = path.clone().into_os_string();
            bad.push(".bad");
            fs::rename(&path, &bad)?;
            report.torn_records_skipped += 1;
            report.problems.push(format!(
                "{name}: not a version {FORMAT_VERSION} queue segment; renamed to {name}.bad, not read"
            ));
            return Ok(ScanOutcome::SetAside);
        }

        let mut entries = Vec::new();
        let mut truncated = false;
        let mut body = Vec::new();
        let mut pos = SEGMENT_HEADER_BYTES;
        // A plain sequential reader for the common case; damage falls back to seeking.
        let mut reader = io::BufReader::with_capacity(64 * 1024, file.try_clone()?);
        reader.seek(SeekFrom::Start(pos))?;
        let acceptable = |id: u64, prev: Option<u64>| id >= first_id && prev.is_none_or(|p| id > p);
        while pos < file_len {
            // Fast path: the record at `pos`, read sequentially.
            let mut good = None;
            let mut record_header = [0u8; RECORD_HEADER_BYTES as usize];
            let mut claimed_len = None;
            if file_len - pos >= RECORD_HEADER_BYTES {
                reader.read_exact(&mut record_header)?;
                let len = u32_at(&record_header, 0);
                let n = len as usize;
                if (BODY_FIXED_BYTES..=MAX_BODY_BYTES).contains(&n)
                    && pos + RECORD_HEADER_BYTES + u64::from(len) <= file_len
                {
                    claimed_len = Some(len);
                    body.clear();
                    body.resize(n, 0);
                    reader.read_exact(&mut body)?;
                    if crc32fast::hash(&body) == u32_at(&record_header, 4)
                        && let Some(d) = decode_body(&body)
                        && acceptable(d.id, *prev_id)
                    {
                        good = Some((d.id, d.enqueued_unix_s, len));
                    }
                }
            }
            if let Some((id, enqueued_unix_s, len)) = good {
                if id >= head_id {
                    entries.push(Entry {
                        id,
                        segment: first_id,
                        offset: pos,
                        len: RECORD_HEADER_BYTES as u32 + len,
                        enqueued_unix_s,
                    });
                }
                *prev_id = Some(id);
                pos += RECORD_HEADER_BYTES + u64::from(len);
                continue;
            }

            // A damaged record at `pos`.
            report.torn_records_skipped += 1;
            if let Some(len) = claimed_len {
                let next = pos + RECORD_HEADER_BYTES + u64::from(len);
                if next < file_len
                    && read_record_at(&mut file, next, file_len, &mut body)?.is_some()
                    && decode_body(&body).is_some_and(|d| acceptable(d.id, *prev_id))
                {
                    report.problems.push(format!(
                        "{name}: damaged record at byte {pos} skipped; reading goes on after it"
                    ));
                    pos = next;
                    reader.seek(SeekFrom::Start(pos))?;
                    continue;
                }
            }
            if is_last {
                file.set_len(pos)?;
                file.sync_all()?;
                report.bytes_truncated += file_len - pos;
                report.problems.push(format!(
                    "{name}: damaged tail at byte {pos} ({} bytes, e.g. a record cut by a power cut); truncated",
                    file_len - pos
                ));
                file_len = pos;
                truncated = true;
            } else {
                report.problems.push(format!(
                    "{name}: damaged record at byte {pos}; the rest of the segment ({} bytes) skipped",
                    file_len - pos
                ));
            }
            break;
        }
        Ok(ScanOutcome::Kept(Scanned {
            len: file_len,
            last_id: prev_id.filter(|&id| id >= first_id),
            entries,
            truncated,
        }))
    }

    /// Enqueues a record stamped with the current time; returns its id.
    pub fn push(&mut self, rec: NewRecord) -> io::Result<u64> {
        self.push_at(rec, now_unix_s())
    }

    /// Enqueues a record with the given enqueue time (Unix seconds; for simulated clocks);
    /// returns its id. Refuses (`InvalidInput`, nothing changed) a payload over
    /// [`MAX_PAYLOAD_BYTES`], a topic over [`MAX_TOPIC_BYTES`] or a record that cannot fit
    /// `max_bytes`. May drop the oldest segments to make room. On a write error (e.g. a full
    /// disk) the record is not enqueued and the segment is cut back to its last record: the
    /// records before it stay readable, and pushes work again once the disk has room. A write
    /// error is reported to [`crate::state_dir`] under the queue's directory (alarm 702 when
    /// the queue is in the state directory), cleared by the next push that works.
    pub fn push_at(&mut self, rec: NewRecord, enqueued_unix_s: f64) -> io::Result<u64> {
        let result = self.push_inner(rec, enqueued_unix_s);
        match &result {
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
            _ => crate::state_dir::report(WRITER, &self.dir, &result),
        }
        result
    }

    fn push_inner(&mut self, rec: NewRecord, enqueued_unix_s: f64) -> io::Result<u64> {
        if rec.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(invalid_input(format!(
                "payload of {} bytes exceeds the queue's limit of {MAX_PAYLOAD_BYTES}",
                rec.payload.len()
            )));
        }
        if rec.topic.len() > MAX_TOPIC_BYTES {
            return Err(invalid_input(format!(
                "topic of {} bytes exceeds {MAX_TOPIC_BYTES}",
                rec.topic.len()
            )));
        }
        let rec_len = record_disk_bytes(rec.topic.len(), rec.payload.len());
        if SEGMENT_HEADER_BYTES + rec_len > self.opts.max_bytes {
            return Err(invalid_input(format!(
                "a record of {rec_len} bytes cannot fit the queue cap of {} bytes",
                self.opts.max_bytes
            )));
        }

        // A new segment when this record would take the current one past its size.
        let needs_segment = match (&self.active, self.segments.back()) {
            (Some(_), Some(seg)) => {
                seg.len > SEGMENT_HEADER_BYTES && seg.len + rec_len > self.opts.segment_bytes
            }
            _ => true,
        };
        if needs_segment {
            self.start_segment()?;
        }
        // Room under the cap: whole oldest segments go.
        while self.bytes + rec_len > self.opts.max_bytes {
            if self.segments.len() > 1 {
                self.drop_oldest()?;
            } else if self
                .segments
                .back()
                .is_some_and(|s| s.len > SEGMENT_HEADER_BYTES)
            {
                // Only the current segment, with records in it (checked above that the record
                // fits an empty one): close it, then it is the oldest.
                self.start_segment()?;
            } else {
                return Err(io::Error::other("no room under the queue cap"));
            }
        }

        let id = self.next_id;
        let Some(next_id) = id.checked_add(1) else {
            return Err(io::Error::other("the queue's ids are exhausted"));
        };
        let body_len = rec_len - RECORD_HEADER_BYTES;
        let buf = &mut self.scratch;
        buf.clear();
        buf.extend_from_slice(&(body_len as u32).to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&enqueued_unix_s.to_bits().to_le_bytes());
        buf.push(if rec.retain { FLAG_RETAIN } else { 0 });
        buf.extend_from_slice(&(rec.topic.len() as u16).to_le_bytes());
        buf.extend_from_slice(rec.topic.as_bytes());
        buf.extend_from_slice(&rec.payload);
        let crc = crc32fast::hash(&buf[RECORD_HEADER_BYTES as usize..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());

        let (Some(file), Some(seg)) = (self.active.as_mut(), self.segments.back_mut()) else {
            return Err(io::Error::other("no segment to append to"));
        };
        if let Err(e) = file.write_all(buf) {
            // Cut a partial write back so the next record follows the last good one.
            if file.set_len(seg.len).is_err() {
                // Unknown contents at the end: leave this segment, start a new one next time.
                let on_disk = file.metadata().map(|m| m.len()).unwrap_or(seg.len);
                self.bytes = self.bytes - seg.len + on_disk;
                seg.len = on_disk;
                self.active = None;
            }
            return Err(e);
        }
        self.entries.push_back(Entry {
            id,
            segment: seg.first_id,
            offset: seg.len,
            len: rec_len as u32,
            enqueued_unix_s,
        });
        seg.len += rec_len;
        self.bytes += rec_len;
        self.next_id = next_id;
        self.pushed += 1;
        self.data_dirty = true;
        self.unsynced_records = self.unsynced_records.saturating_add(1);
        let due = match self.opts.fsync {
            FsyncPolicy::Every(n) => self.unsynced_records >= n.max(1),
            FsyncPolicy::Interval(d) => self.last_fsync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync_data_logged();
        }
        Ok(id)
    }

    /// Closes the current segment (its unsynced writes are fsynced with the next fsync) and
    /// starts a new one named by the next id.
    fn start_segment(&mut self) -> io::Result<()> {
        if let Some(old) = self.active.take()
            && self.data_dirty
            && self.opts.fsync != FsyncPolicy::Never
        {
            self.closed_unsynced.push(old);
        }
        // A segment whose records were all cut back on write errors is reused by name.
        if let Some(seg) = self.segments.back()
            && seg.first_id == self.next_id
        {
            self.bytes -= seg.len;
            self.segments.pop_back();
        }
        let first_id = self.next_id;
        let path = self.segment_path(first_id);
        // No record can carry this name's id yet, so a file by that name holds nothing of use.
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        header[..8].copy_from_slice(&SEGMENT_MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        if let Err(e) = file.write_all(&header) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        drop(file);
        let file = OpenOptions::new().append(true).open(&path)?;
        self.segments.push_back(Segment {
            first_id,
            len: SEGMENT_HEADER_BYTES,
        });
        self.bytes += SEGMENT_HEADER_BYTES;
        self.active = Some(file);
        self.data_dirty = true;
        self.dir_dirty = true;
        Ok(())
    }

    /// Deletes the oldest segment, counting its unacknowledged records as dropped.
    fn drop_oldest(&mut self) -> io::Result<()> {
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        let mut dropped = 0u64;
        while let Some(e) = self.entries.front() {
            if e.segment != seg.first_id {
                break;
            }
            if !self.acked_ahead.remove(&e.id) {
                dropped += 1;
            }
            self.entries.pop_front();
        }
        self.settle_head();
        self.dropped_total += dropped;
        self.bytes -= seg.len;
        if self.segments.is_empty() {
            self.active = None;
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                segment = %segment_name(seg.first_id),
                "platform queue full: oldest unacknowledged records dropped"
            );
        }
        // The new head and count first: a crash in between then only leaves a file to remove.
        self.ack_dirty = true;
        self.write_ack(self.opts.fsync != FsyncPolicy::Never)?;
        self.remove_segment_file(seg.first_id)
    }

    fn remove_segment_file(&mut self, first_id: u64) -> io::Result<()> {
        match fs::remove_file(self.segment_path(first_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.dir_dirty = true;
        Ok(())
    }

    /// Pops acknowledged records off the front so the first entry is unacknowledged.
    fn settle_head(&mut self) {
        while let Some(e) = self.entries.front() {
            if !self.acked_ahead.remove(&e.id) {
                break;
            }
            self.entries.pop_front();
        }
    }

    /// Deletes the segments before the current one whose records are all acknowledged.
    fn release_segments(&mut self) -> io::Result<()> {
        let mut releasable = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if i + 1 == self.segments.len() {
                break;
            }
            let head_in_it = self
                .entries
                .front()
                .is_some_and(|e| e.segment == seg.first_id);
            if head_in_it {
                break;
            }
            releasable.push(seg.first_id);
        }
        if releasable.is_empty() {
            return Ok(());
        }
        // Persist the head first, so ids stay increasing whatever is deleted.
        self.write_ack(self.opts.fsync != FsyncPolicy::Never)?;
        for first_id in releasable {
            if let Some(seg) = self.segments.pop_front() {
                self.bytes -= seg.len;
            }
            self.remove_segment_file(first_id)?;
        }
        Ok(())
    }

    /// Acknowledges a record (the broker's `PUBACK` for it). Returns whether it was waiting;
    /// an unknown, dropped or already acknowledged id changes nothing. Acks may come in any
    /// order. Fails only when deleting a released segment or writing the `ack` file fails
    /// (the acknowledgement itself is recorded in memory).
    pub fn ack(&mut self, id: u64) -> io::Result<bool> {
        let Some(front) = self.entries.front() else {
            return Ok(false);
        };
        if id < front.id || id >= self.next_id {
            return Ok(false);
        }
        if id != front.id {
            if self.entries.binary_search_by_key(&id, |e| e.id).is_err()
                || !self.acked_ahead.insert(id)
            {
                return Ok(false);
            }
            self.acked_total += 1;
            return Ok(true);
        }
        self.entries.pop_front();
        self.acked_total += 1;
        self.settle_head();
        self.ack_dirty = true;
        self.release_segments()?;
        if self.last_ack_write.elapsed() >= ACK_WRITE_INTERVAL {
            self.write_ack(self.opts.fsync != FsyncPolicy::Never)?;
        }
        Ok(true)
    }

    /// Up to `max` unacknowledged records, oldest first, read from disk.
    pub fn pending(&mut self, max: usize) -> Vec<Record> {
        self.pending_from(0, max)
    }

    /// Up to `max` unacknowledged records with ids at or above `from_id`, oldest first (for a
    /// sender that already has records in flight). A record failing its check on the way back
    /// from disk is logged, skipped, counted in `torn_records_skipped` and forgotten.
    pub fn pending_from(&mut self, from_id: u64, max: usize) -> Vec<Record> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        let mut open: Option<(u64, File)> = None;
        let mut buf = Vec::new();
        let start = self.entries.partition_point(|e| e.id < from_id);
        for i in start..self.entries.len() {
            if out.len() >= max {
                break;
            }
            let e = self.entries[i];
            if self.acked_ahead.contains(&e.id) {
                continue;
            }
            match self.read_entry(&e, &mut open, &mut buf) {
                Ok(Some(record)) => out.push(record),
                Ok(None) => {
                    tracing::warn!(id = e.id, segment = %segment_name(e.segment), offset = e.offset,
                        "platform queue: record damaged on disk; skipped");
                    bad.push(e.id);
                }
                Err(err) => {
                    tracing::warn!(id = e.id, segment = %segment_name(e.segment), error = %err,
                        "platform queue: record unreadable; skipped");
                    bad.push(e.id);
                }
            }
        }
        if !bad.is_empty() {
            self.torn_skipped += bad.len() as u64;
            self.entries.retain(|e| !bad.contains(&e.id));
            self.settle_head();
            self.ack_dirty = true;
            if let Err(e) = self.release_segments() {
                self.sync_errors += 1;
                tracing::warn!(error = %e, "platform queue: releasing segments failed");
            }
        }
        out
    }

    fn read_entry(
        &self,
        e: &Entry,
        open: &mut Option<(u64, File)>,
        buf: &mut Vec<u8>,
    ) -> io::Result<Option<Record>> {
        if open.as_ref().is_none_or(|(seg, _)| *seg != e.segment) {
            *open = Some((e.segment, File::open(self.segment_path(e.segment))?));
        }
        let Some((_, file)) = open.as_mut() else {
            return Ok(None);
        };
        let n = e.len as usize;
        if n < RECORD_HEADER_BYTES as usize + BODY_FIXED_BYTES {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(e.offset))?;
        buf.clear();
        buf.resize(n, 0);
        file.read_exact(buf)?;
        let (header, body) = buf.split_at(RECORD_HEADER_BYTES as usize);
        if u32_at(header, 0) as usize != body.len() || crc32fast::hash(body) != u32_at(header, 4) {
            return Ok(None);
        }
        Ok(decode_body(body).filter(|d| d.id == e.id).map(|d| Record {
            id: d.id,
            enqueued_unix_s: d.enqueued_unix_s,
            topic: d.topic.to_owned(),
            payload: d.payload.to_vec(),
            retain: d.retain,
        }))
    }

    /// Number of unacknowledged records.
    pub fn len(&self) -> usize {
        self.entries.len() - self.acked_ahead.len()
    }

    /// Whether every record is acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the segment files on disk, headers and acknowledged records not yet deleted
    /// included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The queue's counters.
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            records: self.len(),
            bytes: self.bytes,
            segments: self.segments.len(),
            dropped_total: self.dropped_total,
            torn_records_skipped: self.torn_skipped,
            acked_total: self.acked_total,
            pushed_since_open: self.pushed,
            sync_errors: self.sync_errors,
            next_id: self.next_id,
            oldest_enqueued_unix_s: self.entries.front().map(|e| e.enqueued_unix_s),
        }
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies the time-based part of the fsync policy and writes the `ack` file if it is due.
    /// Call it about once a second (and after a batch of pushes) so the last records of a
    /// burst are fsynced within the policy's window even when no further push comes.
    pub fn tick(&mut self) -> io::Result<()> {
        let due = self.data_dirty
            && match self.opts.fsync {
                FsyncPolicy::Every(_) => self.last_fsync.elapsed() >= PARTIAL_BATCH_AGE,
                FsyncPolicy::Interval(d) => self.last_fsync.elapsed() >= d,
                FsyncPolicy::Never => false,
            };
        if due {
            self.sync_data()?;
        }
        if self.ack_dirty && self.last_ack_write.elapsed() >= ACK_WRITE_INTERVAL {
            self.write_ack(self.opts.fsync != FsyncPolicy::Never)?;
        }
        Ok(())
    }

    /// fsyncs written records and the directory, and writes and fsyncs the `ack` file, now,
    /// whatever the policy (at shutdown, or before a planned power-off). With `Never`, segments
    /// already closed for a newer one are left to the kernel.
    pub fn sync(&mut self) -> io::Result<()> {
        self.sync_data()?;
        if self.ack_dirty {
            self.write_ack(true)?;
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let result = self.sync_data_inner();
        if let Err(e) = &result {
            self.sync_errors += 1;
            // Cleared by the next push that works (a sync of old data proves little).
            crate::state_dir::failed(WRITER, &self.dir, &format!("fsync: {e}"));
        }
        result
    }

    fn sync_data_inner(&mut self) -> io::Result<()> {
        for file in &self.closed_unsynced {
            file.sync_data()?;
        }
        self.closed_unsynced.clear();
        if self.data_dirty
            && let Some(file) = &self.active
        {
            file.sync_data()?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
        }
        self.data_dirty = false;
        self.dir_dirty = false;
        self.unsynced_records = 0;
        self.last_fsync = Instant::now();
        Ok(())
    }

    fn sync_data_logged(&mut self) {
        if let Err(e) = self.sync_data() {
            // Try again at the next occasion rather than at every push.
            self.last_fsync = Instant::now();
            tracing::warn!(error = %e, "platform queue: fsync failed");
        }
    }

    fn ack_state(&self) -> AckState {
        AckState {
            head_id: self.entries.front().map_or(self.next_id, |e| e.id),
            next_id: self.next_id,
            dropped_total: self.dropped_total,
            acked_total: self.acked_total,
        }
    }

    /// Replaces the `ack` file atomically: temporary file, fsync, rename, directory fsync.
    fn write_ack(&mut self, fsync: bool) -> io::Result<()> {
        let state = self.ack_state();
        let mut bytes = [0u8; ACK_FILE_BYTES];
        bytes[..8].copy_from_slice(&ACK_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[16..24].copy_from_slice(&state.head_id.to_le_bytes());
        bytes[24..32].copy_from_slice(&state.next_id.to_le_bytes());
        bytes[32..40].copy_from_slice(&state.dropped_total.to_le_bytes());
        bytes[40..48].copy_from_slice(&state.acked_total.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..48]);
        bytes[48..52].copy_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join(ACK_TMP_FILE);
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            if fsync {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&tmp, self.dir.join(ACK_FILE))?;
            if fsync {
                sync_dir(&self.dir)?;
            }
            io::Result::Ok(())
        })();
        self.last_ack_write = Instant::now();
        crate::state_dir::report(WRITER, &self.dir.join(ACK_FILE), &result);
        match result {
            Ok(()) => {
                self.ack_dirty = false;
                Ok(())
            }
            Err(e) => {
                self.sync_errors += 1;
                Err(e)
            }
        }
    }
}

impl Drop for DiskQueue {
    /// Writes the `ack` file if the head moved, and fsyncs unless the policy is `Never`.
    fn drop(&mut self) {
        let fsync = self.opts.fsync != FsyncPolicy::Never;
        if fsync && let Err(e) = self.sync_data() {
            tracing::warn!(error = %e, "platform queue: fsync at close failed");
        }
        if self.ack_dirty
            && let Err(e) = self.write_ack(fsync)
        {
            tracing::warn!(error = %e, "platform queue: ack file write at close failed");
        }
        // No longer written: its faults are not the state directory's any more.
        crate::state_dir::forget(&self.dir);
        crate::state_dir::forget(&self.dir.join(ACK_FILE));
    }
}
