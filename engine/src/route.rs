//! How a node's output reaches the actors downstream of it.
//!
//! An edge added with [`GraphBuilder::connect`](crate::GraphBuilder::connect)
//! gets a copy of every batch. An edge added with
//! [`GraphBuilder::connect_keyed`](crate::GraphBuilder::connect_keyed) goes to a
//! *group* of actors: the engine splits each batch by key with the group's
//! [`Splitter`] and sends each part to the one actor that owns that key, each
//! part holding a share of the batch's ack. The sending actor only calls
//! [`Ctx::send`](crate::Ctx::send): it does not know how many actors follow it
//! or how they divide the keys (after Arroyo's collector).

use std::any::Any;
use std::sync::Arc;

use crate::batch::{Batch, Payload};
use crate::error::ActorError;
use crate::mailbox::Addr;

/// Splits a payload into parts by key: given the payload and the number of
/// actors in the group, returns `(actor index, part)` pairs, each index below
/// the group size. Returning no parts settles the group's share of the ack as
/// delivered (nothing for the group to commit).
///
/// ```
/// use std::sync::Arc;
/// use spate_engine::route::Splitter;
/// // Odd numbers to actor 0, even ones to actor 1.
/// let by_parity: Splitter<Vec<u64>> = Arc::new(|numbers: Vec<u64>, actors| {
///     let (odd, even): (Vec<u64>, Vec<u64>) = numbers.into_iter().partition(|n| n % 2 == 1);
///     vec![(0, odd), (1 % actors, even)]
/// });
/// assert_eq!(by_parity(vec![1, 2, 3], 2), vec![(0, vec![1, 3]), (1, vec![2])]);
/// ```
pub type Splitter<O> = Arc<dyn Fn(O, usize) -> Vec<(usize, O)> + Send + Sync>;

/// One downstream route of a node: a single actor, or a keyed group.
pub(crate) enum Route<O> {
    /// Every batch, whole.
    Whole(Addr<O>),
    /// Each batch split by key across the group.
    Keyed {
        actors: Vec<Addr<O>>,
        split: Splitter<O>,
    },
}

impl<O> Clone for Route<O> {
    fn clone(&self) -> Self {
        match self {
            Route::Whole(addr) => Route::Whole(addr.clone()),
            Route::Keyed { actors, split } => Route::Keyed {
                actors: actors.clone(),
                split: split.clone(),
            },
        }
    }
}

impl<O: Payload> Route<O> {
    /// Mailbox depth of every actor on this route.
    pub(crate) fn depth(&self) -> usize {
        match self {
            Route::Whole(addr) => addr.depth(),
            Route::Keyed { actors, .. } => actors.iter().map(Addr::depth).sum(),
        }
    }

    /// Sends `batch` along this route; returns the events sent and the time
    /// spent waiting on full mailboxes, once per actor reached.
    pub(crate) async fn send(
        &self,
        batch: Batch<O>,
        sent: &mut impl FnMut(usize, std::time::Duration),
    ) -> Result<(), ActorError> {
        match self {
            Route::Whole(addr) => {
                let events = batch.payload.len();
                let blocked = addr.send(batch).await?;
                sent(events, blocked);
            }
            Route::Keyed { actors, split } => {
                let (payload, ack, in_flight) = batch.into_parts();
                let mut parts = split(payload, actors.len());
                if let Some(&(index, _)) = parts.iter().find(|(i, _)| *i >= actors.len()) {
                    ack.fail("splitter chose an actor outside its group");
                    return Err(ActorError::internal(format!(
                        "splitter chose actor {index} of a group of {}",
                        actors.len()
                    )));
                }
                let Some((last_index, last)) = parts.pop() else {
                    ack.deliver();
                    return Ok(());
                };
                for (index, part) in parts {
                    let mut shard = Batch::new(part, ack.share());
                    shard.in_flight = in_flight.clone();
                    let events = shard.payload.len();
                    let blocked = actors[index].send(shard).await?;
                    sent(events, blocked);
                }
                let mut shard = Batch::new(last, ack);
                shard.in_flight = in_flight;
                let events = shard.payload.len();
                let blocked = actors[last_index].send(shard).await?;
                sent(events, blocked);
            }
        }
        Ok(())
    }
}

/// A route before the types are known: addresses as `Any`, and the splitter
/// for a keyed group.
pub(crate) struct RouteSpec {
    pub(crate) actors: Vec<Box<dyn Any + Send>>,
    pub(crate) split: Option<Box<dyn Any + Send + Sync>>,
}

/// Restores the typed routes of a node whose output payload is `O`.
pub(crate) fn typed_routes<O: Send + 'static>(specs: Vec<RouteSpec>) -> Vec<Route<O>> {
    specs
        .into_iter()
        .map(|spec| {
            let mut actors: Vec<Addr<O>> = spec
                .actors
                .into_iter()
                .map(|a| {
                    *a.downcast::<Addr<O>>()
                        .expect("edge types checked by build")
                })
                .collect();
            match spec.split {
                None => Route::Whole(actors.pop().expect("a whole route has one actor")),
                Some(split) => Route::Keyed {
                    actors,
                    split: split
                        .downcast_ref::<Splitter<O>>()
                        .expect("splitter type checked by build")
                        .clone(),
                },
            }
        })
        .collect()
}
