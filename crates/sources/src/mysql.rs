//! STUB: to be written.
use drydock_domain::config::MysqlSource;

pub struct Mysql {
    #[allow(dead_code)]
    config: MysqlSource,
}

impl Mysql {
    pub fn new(config: MysqlSource) -> Self {
        Mysql { config }
    }
}

impl crate::DataSource for Mysql {
    fn kind(&self) -> drydock_domain::config::SourceKind {
        todo!()
    }
    fn location(&self) -> String {
        todo!()
    }
    fn restore_mode(&self) -> crate::RestoreMode {
        todo!()
    }
    fn check(&self) -> Result<(), crate::SourceError> {
        todo!()
    }
    fn backup(
        &self,
        _: &dyn crate::Store,
        _: &crate::SourceContext<'_>,
    ) -> Result<crate::BackupOutcome, crate::SourceError> {
        todo!()
    }
    fn has_data(&self) -> Result<bool, crate::SourceError> {
        todo!()
    }
    fn restore(
        &self,
        _: &dyn crate::Fetch,
        _: &drydock_domain::SourceRecord,
        _: &crate::SourceContext<'_>,
    ) -> Result<(), crate::SourceError> {
        todo!()
    }
    fn inspect(
        &self,
        _: &crate::SourceContext<'_>,
    ) -> Result<crate::Inspection, crate::SourceError> {
        todo!()
    }
}
