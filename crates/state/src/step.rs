//! What a schema step is (its own module: the steps' owners, the migration and its
//! error all name it).

/// One schema step, owned by its feature's module and listed once in `MIGRATIONS`.
/// Shipped steps are never edited: a change is a new step.
#[derive(Debug, Clone, Copy)]
pub struct SchemaStep {
    /// The module that owns the tables (`copies`).
    pub feature: &'static str,
    /// What the step does, for error messages (`create the copy_status table`).
    pub what: &'static str,
    /// The statements, run as one batch.
    pub sql: &'static str,
}
