//! The rows of a search, streamed into the page as the query reads them
//! (chunked HTML: the browser shows each row as it arrives, no script
//! needed). The answer starts once the first rows are read (or the query
//! ends): a query failing before any row still gets its own status code
//! and error page, and until then the previous page (with its Cancel
//! button) stays in place. After that the rows follow batch by batch, then
//! how many and how long (or the error that ended the query). Closing the
//! page (Cancel, or the browser's stop) drops the answer, which drops the
//! query on the query threads and records the audit as `cancelled`.

use std::convert::Infallible;
use std::pin::Pin;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use datafusion::arrow::array::RecordBatch;
use tokio::sync::mpsc::Receiver;

use super::layout::{cell, esc, html};
use crate::console::PendingAudit;
use crate::query::format::json_rows;
use crate::query::{QueryBatches, QueryError};

/// The query of the rows, running.
pub type RowsQuery =
    Pin<Box<dyn Future<Output = Result<QueryBatches, QueryError>> + Send + 'static>>;

/// What the page around the rows is.
pub struct Frame {
    /// Everything before the results table.
    pub head: String,
    /// Everything after the note below it.
    pub tail: String,
}

/// How the first wait ended.
pub enum Start {
    /// The first batch of rows (the query goes on).
    Rows(RecordBatch),
    /// The query ended before sending any row.
    Done(Result<QueryBatches, QueryError>),
}

/// Waits for the first batch of rows or the end of `query`.
pub async fn first(query: &mut RowsQuery, rows: &mut Receiver<RecordBatch>) -> Start {
    tokio::select! {
        biased;
        batch = rows.recv() => match batch {
            Some(batch) => Start::Rows(batch),
            None => Start::Done(query.await),
        },
        result = &mut *query => Start::Done(result),
    }
}

struct Streaming {
    frame: Frame,
    query: Option<RowsQuery>,
    rows: Receiver<RecordBatch>,
    first: Option<RecordBatch>,
    result: Option<Result<QueryBatches, QueryError>>,
    shown: usize,
    row_limit: usize,
    started: tokio::time::Instant,
    audit: Option<PendingAudit>,
    stage: Stage,
}

#[derive(PartialEq, Eq)]
enum Stage {
    Head,
    Rows,
    Footer,
    Done,
}

/// The table's start: the caption and the column names.
fn table_head(names: &[String]) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table id="results"><caption>Matching events</caption><thead><tr>"#,
    );
    for name in names {
        out.push_str(&format!(r#"<th scope="col">{}</th>"#, esc(name)));
    }
    out.push_str("</tr></thead><tbody>");
    out
}

fn names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// The rows of `batch` as table rows.
pub fn table_rows(batch: &RecordBatch) -> Result<String, String> {
    let rows = json_rows(std::slice::from_ref(batch)).map_err(|e| format!("result: {e}"))?;
    let mut out = String::new();
    for row in rows {
        out.push_str("<tr>");
        for value in &row {
            out.push_str(&format!("<td>{}</td>", esc(&cell(value))));
        }
        out.push_str("</tr>");
    }
    Ok(out)
}

impl Streaming {
    fn emit_batch(&mut self, batch: &RecordBatch) -> String {
        self.shown += batch.num_rows();
        table_rows(batch)
            .unwrap_or_else(|e| format!(r#"<tr><td class="error">{}</td></tr>"#, esc(&e)))
    }

    /// The next piece of the page; `None` at the end.
    async fn next(&mut self) -> Option<String> {
        match self.stage {
            Stage::Head => {
                self.stage = Stage::Rows;
                let mut out = std::mem::take(&mut self.frame.head);
                match self.first.take() {
                    Some(batch) => {
                        out.push_str(&table_head(&names(&batch)));
                        out.push_str(&self.emit_batch(&batch));
                    }
                    None => {
                        let names = match &self.result {
                            Some(Ok(b)) => {
                                b.schema.fields().iter().map(|f| f.name().clone()).collect()
                            }
                            _ => Vec::new(),
                        };
                        out.push_str(&table_head(&names));
                    }
                }
                Some(out)
            }
            Stage::Rows => loop {
                let batch = match self.query.as_mut() {
                    Some(query) => tokio::select! {
                        biased;
                        batch = self.rows.recv() => match batch {
                            Some(batch) => Some(batch),
                            None => {
                                self.result = Some(query.await);
                                self.query = None;
                                None
                            }
                        },
                        result = &mut *query => {
                            self.result = Some(result);
                            self.query = None;
                            None
                        }
                    },
                    // The query has ended: what it sent before is still due.
                    None => match self.rows.try_recv() {
                        Ok(batch) => Some(batch),
                        Err(_) => {
                            self.stage = Stage::Footer;
                            return Some(String::new());
                        }
                    },
                };
                if let Some(batch) = batch {
                    return Some(self.emit_batch(&batch));
                }
            },
            Stage::Footer => {
                self.stage = Stage::Done;
                let elapsed = self.started.elapsed().as_millis();
                let (outcome, note) = match self.result.take() {
                    Some(Ok(b)) if b.truncated => (
                        "ok",
                        format!(
                            r#"<p class="note" id="result-count">first {} rows (more match), {elapsed} ms</p>"#,
                            self.shown.min(self.row_limit)
                        ),
                    ),
                    Some(Ok(_)) => (
                        "ok",
                        format!(
                            r#"<p class="note" id="result-count">{} rows, {elapsed} ms</p>"#,
                            self.shown
                        ),
                    ),
                    Some(Err(e)) => (
                        "error",
                        format!(
                            r#"<p class="note" id="result-count">{} rows before the query failed</p><p class="error" role="alert" id="search-error">{}</p>"#,
                            self.shown,
                            esc(&e.to_string())
                        ),
                    ),
                    None => ("error", String::new()),
                };
                if let Some(audit) = self.audit.take() {
                    audit.finish(outcome).await;
                }
                let mut out = String::from("</tbody></table></div>");
                out.push_str(&note);
                out.push_str(&self.frame.tail);
                Some(out)
            }
            Stage::Done => None,
        }
    }
}

/// The streamed answer: `frame` around the rows of `query` (which has sent
/// `start` so far), the audit finished with the outcome at the end.
pub fn respond(
    frame: Frame,
    start: Start,
    query: RowsQuery,
    rows: Receiver<RecordBatch>,
    row_limit: usize,
    started: tokio::time::Instant,
    audit: PendingAudit,
) -> Response {
    let (first, result, query) = match start {
        Start::Rows(batch) => (Some(batch), None, Some(query)),
        Start::Done(result) => (None, Some(result), None),
    };
    let state = Streaming {
        frame,
        query,
        rows,
        first,
        result,
        shown: 0,
        row_limit,
        started,
        audit: Some(audit),
        stage: Stage::Head,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            let piece = state.next().await?;
            if !piece.is_empty() {
                return Some((Ok::<_, Infallible>(piece), state));
            }
        }
    });
    // The security headers of every page, on the streamed body.
    let mut response = html(StatusCode::OK, String::new());
    *response.body_mut() = Body::from_stream(stream);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int64Array, StringArray};

    use super::*;

    fn batch(from: i64, n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "n",
                Arc::new(Int64Array::from_iter_values(from..from + n)) as Arc<dyn Array>,
            ),
            (
                "m",
                Arc::new(StringArray::from_iter_values(
                    (from..from + n).map(|i| format!("<b>{i}</b>")),
                )) as Arc<dyn Array>,
            ),
        ])
        .unwrap()
    }

    #[tokio::test]
    async fn rows_are_sent_as_the_query_reads_them() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let mut query: RowsQuery = Box::pin(async move {
            tx.send(batch(0, 2)).await.unwrap();
            // The second batch only once the first was shown.
            wait.await.unwrap();
            tx.send(batch(2, 1)).await.unwrap();
            Ok(QueryBatches {
                schema: batch(0, 0).schema(),
                batches: Vec::new(),
                truncated: false,
                files_scanned: 0,
            })
        });
        let start = first(&mut query, &mut rx).await;
        assert!(matches!(&start, Start::Rows(b) if b.num_rows() == 2));
        let (first_rows, result, query) = match start {
            Start::Rows(b) => (Some(b), None, Some(query)),
            Start::Done(r) => (None, Some(r), None),
        };
        let mut state = Streaming {
            frame: Frame {
                head: "<main>".into(),
                tail: "</main>".into(),
            },
            query,
            rows: rx,
            first: first_rows,
            result,
            shown: 0,
            row_limit: 200,
            started: tokio::time::Instant::now(),
            audit: None,
            stage: Stage::Head,
        };
        let head = state.next().await.unwrap();
        assert!(
            head.starts_with("<main><div class=\"scroll\"><table id=\"results\">"),
            "{head}"
        );
        assert!(
            head.contains("<th scope=\"col\">n</th><th scope=\"col\">m</th>"),
            "{head}"
        );
        assert!(
            head.contains("<tr><td>0</td><td>&lt;b&gt;0&lt;/b&gt;</td></tr><tr><td>1</td>"),
            "{head}"
        );
        assert!(!head.contains("<td>2</td>"));
        go.send(()).unwrap();
        let more = state.next().await.unwrap();
        assert_eq!(more, "<tr><td>2</td><td>&lt;b&gt;2&lt;/b&gt;</td></tr>");
        let mut rest = String::new();
        while let Some(piece) = state.next().await {
            rest.push_str(&piece);
        }
        assert!(
            rest.starts_with(
                "</tbody></table></div><p class=\"note\" id=\"result-count\">3 rows, "
            ),
            "{rest}"
        );
        assert!(rest.ends_with("</main>"), "{rest}");
    }
}
