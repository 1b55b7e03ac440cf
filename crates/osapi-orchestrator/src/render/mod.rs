//! TEMPORARY stub until the renderer lands.
use crate::events::{Event, Observer};
/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice { /** */ Auto, /** */ Always, /** */ Never }
/// Stub.
pub struct Renderer;
impl Renderer {
    /// Stub.
    pub fn stdout(_c: ColorChoice, _v: bool) -> Renderer { Renderer }
}
impl Observer for Renderer { fn on_event(&self, e: &Event) { println!("{e:?}"); } }
