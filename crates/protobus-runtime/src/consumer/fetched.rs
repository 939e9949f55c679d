//! A record as librdkafka hands it over: read in place, never copied, freed
//! when dropped.
//!
//! rdkafka's `BorrowedMessage` can only come from its one-record-at-a-time
//! read; the consumer reads its fetch queue a batch at a time
//! (`fetch_queue`), so it holds librdkafka's message itself. The
//! accessors are those of `rdkafka::Message`, except that header names which
//! are not UTF-8 are skipped instead of ending the process.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use rdkafka::Timestamp;
use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;

/// A record read from one of the consumer's partitions, valid while the
/// consumer `'c` lives.
pub(crate) struct Fetched<'c> {
    ptr: NonNull<rd::rd_kafka_message_t>,
    owner: Owner<'c>,
}

enum Owner<'c> {
    /// Taken from the member's fetch queue: ours, destroyed with its `Spent`.
    Queue(Spent, PhantomData<&'c ()>),
    /// Read through rdkafka's stream (a partition not forwarded to the
    /// fetch queue), which frees it.
    Stream { _message: BorrowedMessage<'c> },
}

// SAFETY: a message taken off a queue belongs to whoever holds it; librdkafka
// lets any thread read or destroy it (rdkafka's `BorrowedMessage` is `Send`
// and `Sync` on the same grounds). Its headers are parsed on first use, as
// with `BorrowedMessage`.
unsafe impl Send for Fetched<'_> {}
unsafe impl Sync for Fetched<'_> {}

impl std::fmt::Debug for Fetched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

/// The error a message with its error field set stands for (librdkafka
/// reports a partition's fetch errors as such messages).
fn error_of(message: &rd::rd_kafka_message_t) -> Option<KafkaError> {
    match message.err {
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => None,
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
            Some(KafkaError::PartitionEOF(message.partition))
        }
        code => Some(KafkaError::MessageConsumption(code.into())),
    }
}

impl<'c> Fetched<'c> {
    /// Takes `ptr`, returned by `rd_kafka_consume_batch_queue` for a consumer
    /// that lives for `'c`; a message that carries an error is destroyed
    /// and its error returned.
    ///
    /// # Safety
    /// `ptr` is a message that consumer returned and nothing else owns.
    pub(crate) unsafe fn from_queue(
        ptr: NonNull<rd::rd_kafka_message_t>,
    ) -> Result<Fetched<'c>, KafkaError> {
        // Ours, by the caller's word: destroyed with it, here on an error.
        let spent = Spent(ptr);
        // SAFETY: a valid message, by the caller's word.
        if let Some(err) = error_of(unsafe { ptr.as_ref() }) {
            return Err(err);
        }
        Ok(Fetched {
            ptr,
            owner: Owner::Queue(spent, PhantomData),
        })
    }

    /// A record rdkafka's stream returned (errors it returns separately).
    pub(crate) fn from_stream(message: BorrowedMessage<'c>) -> Self {
        let ptr = NonNull::new(message.ptr()).expect("rdkafka hands over non-null messages");
        Fetched {
            ptr,
            owner: Owner::Stream { _message: message },
        }
    }

    fn raw(&self) -> &rd::rd_kafka_message_t {
        // SAFETY: valid until `self` is dropped.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn partition(&self) -> i32 {
        self.raw().partition
    }

    pub(crate) fn offset(&self) -> i64 {
        self.raw().offset
    }

    pub(crate) fn key(&self) -> Option<&[u8]> {
        let m = self.raw();
        // SAFETY: librdkafka's key buffer, `key_len` long, lives as the message.
        (!m.key.is_null()).then(|| unsafe { bytes(m.key.cast(), m.key_len) })
    }

    pub(crate) fn payload(&self) -> Option<&[u8]> {
        let m = self.raw();
        // SAFETY: as for the key.
        (!m.payload.is_null()).then(|| unsafe { bytes(m.payload.cast(), m.len) })
    }

    /// The topic's name as librdkafka knows it (Kafka allows only ASCII in
    /// topic names; anything else reads as empty).
    pub(crate) fn topic(&self) -> &str {
        // SAFETY: a fetched message has its topic handle, whose name is a C
        // string that lives as long as the handle the message holds.
        let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(self.raw().rkt)) };
        name.to_str().unwrap_or_default()
    }

    pub(crate) fn timestamp(&self) -> Timestamp {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a valid message and a place for the type.
        let ms = unsafe { rd::rd_kafka_message_timestamp(self.ptr.as_ptr(), &mut kind) };
        match kind {
            _ if ms == -1 => Timestamp::NotAvailable,
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => {
                Timestamp::CreateTime(ms)
            }
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => {
                Timestamp::LogAppendTime(ms)
            }
            _ => Timestamp::NotAvailable,
        }
    }

    /// Its headers in order, name and value (`None` for a null value). A
    /// header whose name is not UTF-8 cannot be asked for by name and is
    /// skipped.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        let mut list = ptr::null_mut();
        // SAFETY: a valid message; librdkafka parses its headers once and
        // keeps them with the message.
        let found = unsafe { rd::rd_kafka_message_headers(self.ptr.as_ptr(), &mut list) };
        let list = (found == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
            .then_some(list)
            .filter(|l| !l.is_null());
        // SAFETY: the list lives as the message.
        let count = list.map_or(0, |l| unsafe { rd::rd_kafka_header_cnt(l) });
        (0..count).filter_map(move |i| {
            let (mut name, mut value, mut size) = (ptr::null(), ptr::null(), 0);
            // SAFETY: `i` is within the list, which lives as the message;
            // librdkafka's names are NUL-terminated.
            unsafe {
                let err = rd::rd_kafka_header_get_all(list?, i, &mut name, &mut value, &mut size);
                if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return None;
                }
                let name = CStr::from_ptr(name).to_str().ok()?;
                Some((name, (!value.is_null()).then(|| bytes(value.cast(), size))))
            }
        })
    }

    /// The leader epoch of its partition when it was written (-1: unknown).
    pub(crate) fn leader_epoch(&self) -> i32 {
        // SAFETY: a valid consumer message.
        unsafe { rd::rd_kafka_message_leader_epoch(self.ptr.as_ptr()) }
    }
}

impl Fetched<'_> {
    /// The record as a [`Spent`] to destroy on another thread, if it is
    /// ours to destroy; a record rdkafka's stream read is freed here.
    pub(crate) fn spend(self) -> Option<Spent> {
        match self.owner {
            Owner::Queue(spent, _) => Some(spent),
            Owner::Stream { .. } => None,
        }
    }
}

/// A message taken off a queue, destroyed when dropped: what a `Fetched`
/// owns, and what is left of it once the member is done with it. It does
/// not carry its consumer's lifetime, so that another thread can drop it:
/// whoever holds one drops it before the consumer is destroyed (the
/// member's `Disposal` joins its thread when the member's run ends).
pub(crate) struct Spent(NonNull<rd::rd_kafka_message_t>);

// SAFETY: as for `Fetched`: any thread may destroy a message taken off a queue.
unsafe impl Send for Spent {}

impl Spent {
    /// The bytes of its payload and key, which librdkafka holds until it
    /// is destroyed.
    pub(crate) fn bytes(&self) -> usize {
        // SAFETY: valid until `self` is dropped.
        let m = unsafe { self.0.as_ref() };
        m.len + m.key_len
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        // SAFETY: ours (made once per message taken), destroyed once.
        unsafe { rd::rd_kafka_message_destroy(self.0.as_ptr()) };
    }
}

/// # Safety
/// `data` points at `len` bytes that outlive `'a`.
unsafe fn bytes<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: by the caller's word.
    unsafe { std::slice::from_raw_parts(data, len) }
}
