//! The S3 lake as an [`ObjectStore`], over the project's `aws-sdk-s3` client:
//! how DataFusion reads `s3://bucket/prefix/logs/…` (`spate query --lake`, and
//! `POST /v1/query` of `spate run` with `[lake.s3]`).
//!
//! One SDK for everything: the client comes from
//! [`AwsConfig::s3_client`](spate_operators::aws::AwsConfig::s3_client), with
//! the standard credential chain, the region and the endpoint overrides
//! (`[aws]`, `AWS_ENDPOINT_URL`; path-style addressing against an emulator).
//! object_store's own `aws` feature is not used: it would bring a second
//! HTTP/TLS stack and a second credential chain.
//!
//! The store serves one bucket; a [`Path`] is an object key. It is read-only:
//! - `get_opts`: GetObject, with the byte range as a `Range` header (DataFusion
//!   reads Parquet footers and column chunks by range; the default
//!   `get_ranges` coalesces nearby ranges into one request), the conditions
//!   (`If-Match`, `If-None-Match`, `If-(Un)Modified-Since`) and the version
//!   passed on; the body streams. With `head` set it is a HeadObject.
//! - `list`: ListObjectsV2 under the prefix, page by page (continuation
//!   tokens), as a stream.
//! - `list_with_delimiter`: ListObjectsV2 with the delimiter `/`, all pages.
//! - Writes, deletes and copies fail with [`Error::NotSupported`].
//!
//! Keys ending in `/` (the zero-byte "folders" some tools create) are not
//! objects of the listing.
//!
//! SDK calls run on the runtime the store was made on (the service's, where
//! the HTTP connections the S3 clients share live), not on the query threads
//! that poll the store: a query computing hard cannot stall those connections
//! and with them the lake writer's uploads. A call whose query is dropped is
//! aborted.
//!
//! Errors: a missing key is [`Error::NotFound`], HTTP 304 and 412 are
//! [`Error::NotModified`] and [`Error::Precondition`], 401 and 403 are
//! [`Error::Unauthenticated`] and [`Error::PermissionDenied`]; anything else
//! (a missing bucket, a network failure) is [`Error::Generic`] with the
//! operation, the location and the SDK's full error text.

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime as AwsDateTime};
use bytes::Bytes;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, Error, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, Result,
};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

/// The `store` name in [`Error::Generic`].
const STORE: &str = "S3";

/// One bucket, read through the AWS SDK.
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Keys per ListObjectsV2 page (S3's default, 1,000, when `None`).
    page_size: Option<i32>,
    /// Where SDK calls run: the runtime the store was made on, if any.
    io: Option<tokio::runtime::Handle>,
}

impl S3Store {
    /// The store of `bucket`, read with `client`; made inside a tokio runtime,
    /// its SDK calls run on that runtime whoever polls them.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            page_size: None,
            io: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Runs an SDK call on the store's I/O runtime (aborted if dropped).
    async fn on_io<T: Send + 'static>(
        &self,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let Some(io) = &self.io else {
            return Ok(call.await);
        };
        struct AbortOnDrop(tokio::task::AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let task = io.spawn(call);
        let _abort = AbortOnDrop(task.abort_handle());
        task.await
            .map_err(|e| generic(format!("s3 call on the i/o runtime failed: {e}")))
    }

    /// Lists `keys` keys per page (tests: pagination without 1,000 objects).
    #[cfg(test)]
    fn with_page_size(mut self, keys: i32) -> Self {
        self.page_size = Some(keys);
        self
    }

    async fn head_object(&self, location: &Path, options: &GetOptions) -> Result<GetResult> {
        let key = location.as_ref();
        let request = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(options.if_match.clone())
            .set_if_none_match(options.if_none_match.clone())
            .set_if_modified_since(options.if_modified_since.map(aws_time))
            .set_if_unmodified_since(options.if_unmodified_since.map(aws_time))
            .set_version_id(options.version.clone());
        let out = self
            .on_io(request.send())
            .await?
            .map_err(|e| sdk_error(e, "head", &self.bucket, key))?;
        let size = out
            .content_length()
            .ok_or_else(|| generic(format!("s3 head of {}: no content length", self.url(key))))?;
        let meta = object_meta(
            key,
            Some(size),
            out.last_modified(),
            out.e_tag(),
            out.version_id(),
        )?;
        Ok(GetResult {
            range: 0..meta.size,
            meta,
            payload: GetResultPayload::Stream(stream::empty().boxed()),
            attributes: Default::default(),
        })
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// One ListObjectsV2 page under `prefix`: the objects, the common
    /// prefixes (with a delimiter), and the token of the next page.
    async fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<String>,
    ) -> Result<(Vec<ObjectMeta>, Vec<Path>, Option<String>)> {
        let request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.then(|| "/".to_string()))
            .set_continuation_token(token)
            .set_max_keys(self.page_size);
        let page = self
            .on_io(request.send())
            .await?
            .map_err(|e| sdk_error(e, "list", &self.bucket, prefix))?;
        let next = next_page(page.is_truncated(), page.next_continuation_token())
            .map_err(|e| generic(format!("s3 list of {}: {e}", self.url(prefix))))?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| Some((o.key().filter(|k| !k.ends_with('/'))?, o)))
            .map(|(key, o)| object_meta(key, o.size(), o.last_modified(), o.e_tag(), None))
            .collect::<Result<Vec<_>>>()?;
        let prefixes = page
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(|p| Path::parse(p).map_err(Error::from))
            .collect::<Result<Vec<_>>>()?;
        Ok((objects, prefixes, next))
    }
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3Store(s3://{})", self.bucket)
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put_opts(
        &self,
        location: &Path,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> Result<PutResult> {
        Err(read_only("put", location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(read_only("multipart upload", location))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            return self.head_object(location, &options).await;
        }
        let key = location.as_ref();
        if let Some(range) = &options.range {
            range.is_valid().map_err(|e| Error::Generic {
                store: STORE,
                source: Box::new(e),
            })?;
        }
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(options.range.as_ref().map(GetRange::to_string))
            .set_if_match(options.if_match.clone())
            .set_if_none_match(options.if_none_match.clone())
            .set_if_modified_since(options.if_modified_since.map(aws_time))
            .set_if_unmodified_since(options.if_unmodified_since.map(aws_time))
            .set_version_id(options.version.clone());
        let out = self
            .on_io(request.send())
            .await?
            .map_err(|e| sdk_error(e, "get", &self.bucket, key))?;
        let (range, size) = response_range(
            options.range.as_ref(),
            out.content_range(),
            out.content_length(),
        )
        .map_err(|e| generic(format!("s3 get of {}: {e}", self.url(key))))?;
        let meta = object_meta(
            key,
            i64::try_from(size).ok(),
            out.last_modified(),
            out.e_tag(),
            out.version_id(),
        )?;
        Ok(GetResult {
            payload: GetResultPayload::Stream(body_stream(out.body, self.url(key))),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations
            .map(|location| Err(read_only("delete", &location?)))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let store = self.clone();
        let prefix = list_prefix(prefix);
        // State: the next page's token; `None` once the last page is read.
        stream::try_unfold(Some(None), move |token: Option<Option<String>>| {
            let (store, prefix) = (store.clone(), prefix.clone());
            async move {
                let Some(token) = token else {
                    return Ok::<_, Error>(None);
                };
                let (objects, _, next) = store.list_page(&prefix, false, token).await?;
                let page = stream::iter(objects.into_iter().map(Ok::<_, Error>));
                Ok(Some((page, next.map(Some))))
            }
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let prefix = list_prefix(prefix);
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        let mut token = None;
        loop {
            let (objects, prefixes, next) = self.list_page(&prefix, true, token).await?;
            result.objects.extend(objects);
            result.common_prefixes.extend(prefixes);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(result),
            }
        }
    }

    async fn copy_opts(&self, from: &Path, _to: &Path, _options: CopyOptions) -> Result<()> {
        Err(read_only("copy", from))
    }
}

/// The refusal of every write.
fn read_only(op: &str, location: &Path) -> Error {
    Error::NotSupported {
        source: format!("the s3 lake is read-only here: cannot {op} {location}").into(),
    }
}

fn generic(message: String) -> Error {
    Error::Generic {
        store: STORE,
        source: message.into(),
    }
}

/// What an S3 error means to a reader of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    NotFound,
    NotModified,
    Precondition,
    Unauthenticated,
    PermissionDenied,
    Other,
}

/// Classifies an S3 error by its code and HTTP status. A missing bucket is
/// not a missing object: it stays [`ErrorKind::Other`] so that a query over
/// it fails instead of reading as empty.
fn error_kind(status: Option<u16>, code: Option<&str>) -> ErrorKind {
    match (code, status) {
        (Some("NoSuchBucket"), _) => ErrorKind::Other,
        (Some("NoSuchKey" | "NotFound" | "NoSuchVersion"), _) | (_, Some(404)) => {
            ErrorKind::NotFound
        }
        (_, Some(304)) => ErrorKind::NotModified,
        (Some("PreconditionFailed"), _) | (_, Some(412)) => ErrorKind::Precondition,
        (_, Some(401)) => ErrorKind::Unauthenticated,
        (Some("AccessDenied"), _) | (_, Some(403)) => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    }
}

/// An SDK error as an object_store error.
fn sdk_error<E>(err: SdkError<E>, op: &str, bucket: &str, key: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = error_kind(status, err.code());
    let path = format!("s3://{bucket}/{key}");
    let message = match err.code() {
        Some("NoSuchBucket") => format!("s3 {op} of {path}: bucket {bucket} does not exist"),
        _ => format!("s3 {op} of {path}: {}", DisplayErrorContext(&err)),
    };
    let source = message.into();
    match kind {
        ErrorKind::NotFound => Error::NotFound { path, source },
        ErrorKind::NotModified => Error::NotModified { path, source },
        ErrorKind::Precondition => Error::Precondition { path, source },
        ErrorKind::Unauthenticated => Error::Unauthenticated { path, source },
        ErrorKind::PermissionDenied => Error::PermissionDenied { path, source },
        ErrorKind::Other => Error::Generic {
            store: STORE,
            source,
        },
    }
}

/// The S3 key prefix that lists `prefix` as a directory: `a/b` → `a/b/`
/// (not `a/bc`), the whole bucket for none.
fn list_prefix(prefix: Option<&Path>) -> String {
    match prefix.map(Path::as_ref) {
        None | Some("") => String::new(),
        Some(p) => format!("{p}/"),
    }
}

/// The token of the page after this one, `None` after the last page.
fn next_page(truncated: Option<bool>, token: Option<&str>) -> Result<Option<String>, String> {
    match (truncated.unwrap_or(false), token) {
        (false, _) => Ok(None),
        (true, Some(token)) if !token.is_empty() => Ok(Some(token.to_string())),
        (true, _) => Err("a truncated listing without a continuation token".into()),
    }
}

/// Parses `Content-Range: bytes START-END/SIZE` into `START..END+1` and `SIZE`.
fn parse_content_range(header: &str) -> Option<(Range<u64>, u64)> {
    let (range, size) = header.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, size) = (
        start.parse::<u64>().ok()?,
        end.parse::<u64>().ok()?,
        size.parse::<u64>().ok()?,
    );
    (start <= end && end < size).then_some((start..end + 1, size))
}

/// The byte range a GetObject response holds, and the object's size, checked
/// against what was asked for: S3 answers a range with `Content-Range`, a whole
/// object with `Content-Length` only.
fn response_range(
    requested: Option<&GetRange>,
    content_range: Option<&str>,
    content_length: Option<i64>,
) -> Result<(Range<u64>, u64), String> {
    let Some(requested) = requested else {
        let size = content_length
            .and_then(|n| u64::try_from(n).ok())
            .ok_or("no content length in the response")?;
        return Ok((0..size, size));
    };
    let header = content_range
        .ok_or_else(|| format!("range {requested} asked for, but the response has no range"))?;
    let (range, size) = parse_content_range(header)
        .ok_or_else(|| format!("unreadable content range `{header}`"))?;
    let expected = requested.as_range(size).map_err(|e| e.to_string())?;
    if range != expected {
        return Err(format!(
            "asked for {requested} of {size} bytes, got `{header}`"
        ));
    }
    Ok((range, size))
}

/// The listing or response fields of an object as its [`ObjectMeta`].
fn object_meta(
    key: &str,
    size: Option<i64>,
    last_modified: Option<&AwsDateTime>,
    e_tag: Option<&str>,
    version: Option<&str>,
) -> Result<ObjectMeta> {
    let size = size
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| generic(format!("object {key} has no size")))?;
    Ok(ObjectMeta {
        location: Path::parse(key)?,
        last_modified: last_modified
            .and_then(|t| SystemTime::try_from(*t).ok())
            .map(Into::into)
            .unwrap_or_default(),
        size,
        e_tag: e_tag.map(str::to_string),
        version: version.map(str::to_string),
    })
}

/// A time of `GetOptions` as the SDK's.
fn aws_time(time: impl Into<SystemTime>) -> AwsDateTime {
    AwsDateTime::from(time.into())
}

/// The response body as a stream of chunks.
fn body_stream(body: ByteStream, url: String) -> BoxStream<'static, Result<Bytes>> {
    stream::try_unfold(body, move |mut body| {
        let url = url.clone();
        async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(generic(format!(
                    "s3 get of {url}: reading the body: {}",
                    DisplayErrorContext(&e)
                ))),
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod moto_tests;

#[cfg(test)]
mod tests;
