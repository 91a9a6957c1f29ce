//! Page reads kept in flight ahead of the walk, taken oldest first.
//!
//! Every read still pending is polled whenever the walk waits for the oldest, so the store has
//! each one under way (SQLite's run on blocking threads of their own and queue for its
//! connections) while earlier pages are walked.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use strongroom_store::StoreError;

use super::Page;

pub(super) type PageRead<'a> = Pin<Box<dyn Future<Output = Result<Page, StoreError>> + Send + 'a>>;

struct InFlight<'a> {
    read: PageRead<'a>,
    /// Set once `read` has finished; it is not polled again.
    page: Option<Result<Page, StoreError>>,
}

#[derive(Default)]
pub(super) struct ReadAhead<'a> {
    reads: VecDeque<InFlight<'a>>,
}

impl<'a> ReadAhead<'a> {
    pub(super) fn push(&mut self, read: PageRead<'a>) {
        self.reads.push_back(InFlight { read, page: None });
    }

    /// The oldest read's page, once read; `None` when no read is left.
    pub(super) async fn next(&mut self) -> Option<Result<Page, StoreError>> {
        poll_fn(|cx| {
            for in_flight in &mut self.reads {
                if in_flight.page.is_none()
                    && let Poll::Ready(page) = in_flight.read.as_mut().poll(cx)
                {
                    in_flight.page = Some(page);
                }
            }
            let Some(oldest) = self.reads.front_mut() else {
                return Poll::Ready(None);
            };
            match oldest.page.take() {
                Some(page) => {
                    self.reads.pop_front();
                    Poll::Ready(Some(page))
                }
                None => Poll::Pending,
            }
        })
        .await
    }
}
