//! Graph validation: every malformed description is rejected with a clear error.

use spate_engine::testkit::{CaptureSink, Forward, ScriptedSource};
use spate_engine::{ActorOptions, GraphBuilder, GraphError};

fn source() -> ScriptedSource<Vec<u64>> {
    ScriptedSource::new(Vec::<Vec<u64>>::new())
}

fn builder() -> GraphBuilder {
    let mut g = GraphBuilder::new();
    let s = source();
    g.source("src", move || s.clone());
    g.actor("a", Forward::<Vec<u64>>::new, ActorOptions::default());
    g.actor("b", Forward::<Vec<u64>>::new, ActorOptions::default());
    g.actor(
        "sink",
        CaptureSink::<Vec<u64>>::new,
        ActorOptions::default(),
    );
    g
}

fn err(g: GraphBuilder) -> GraphError {
    match g.build() {
        Ok(_) => panic!("graph should be rejected"),
        Err(e) => e,
    }
}

#[test]
fn valid_graph_has_topological_order() {
    let mut g = builder();
    g.connect("src", "a").connect("a", "b").connect("b", "sink");
    let graph = g.build().unwrap();
    assert_eq!(graph.topological_order(), vec!["src", "a", "b", "sink"]);
}

#[test]
fn cycle_is_rejected_with_its_members() {
    let mut g = builder();
    g.connect("src", "a")
        .connect("a", "b")
        .connect("b", "a")
        .connect("b", "sink");
    let e = err(g);
    assert_eq!(
        e,
        GraphError::Cycle(vec!["a".into(), "b".into(), "sink".into()])
    );
    assert!(e.to_string().starts_with("cycle through"));
}

#[test]
fn self_loop_is_a_cycle() {
    let mut g = builder();
    g.connect("src", "a")
        .connect("a", "a")
        .connect("a", "b")
        .connect("b", "sink");
    assert!(matches!(err(g), GraphError::Cycle(_)));
}

#[test]
fn dangling_edge_names_the_missing_node() {
    let mut g = builder();
    g.connect("src", "a").connect("a", "nowhere");
    let e = err(g);
    assert_eq!(
        e.to_string(),
        r#"edge "a" -> "nowhere" refers to unknown node "nowhere""#
    );
}

#[test]
fn actor_without_input_is_rejected() {
    let mut g = builder();
    g.connect("src", "a").connect("a", "sink");
    assert_eq!(err(g), GraphError::NoInput("b".into()));
}

#[test]
fn transform_without_output_is_rejected() {
    let mut g = builder();
    g.connect("src", "a")
        .connect("src", "b")
        .connect("a", "sink");
    assert_eq!(err(g), GraphError::NoOutput("b".into()));
}

#[test]
fn edges_into_sources_and_out_of_sinks_are_rejected() {
    let mut g = builder();
    g.connect("a", "src");
    assert!(matches!(err(g), GraphError::EdgeIntoSource { .. }));
    let mut g = builder();
    g.connect("sink", "a");
    assert!(matches!(err(g), GraphError::EdgeFromSink { .. }));
}

#[test]
fn payload_type_mismatch_is_rejected() {
    let mut g = builder();
    g.actor(
        "strings",
        CaptureSink::<Vec<String>>::new,
        ActorOptions::default(),
    );
    g.connect("src", "strings");
    let e = err(g);
    assert!(
        matches!(e, GraphError::TypeMismatch { ref to, .. } if to == "strings"),
        "{e}"
    );
    assert!(e.to_string().contains("alloc::string::String"), "{e}");
}

#[test]
fn duplicate_names_and_edges_are_rejected() {
    let mut g = builder();
    g.actor("a", Forward::<Vec<u64>>::new, ActorOptions::default());
    assert_eq!(err(g), GraphError::DuplicateNode("a".into()));
    let mut g = builder();
    g.connect("src", "a").connect("src", "a");
    assert!(matches!(err(g), GraphError::DuplicateEdge { .. }));
}

#[test]
fn empty_graph_is_rejected() {
    assert_eq!(err(GraphBuilder::new()), GraphError::Empty);
}
