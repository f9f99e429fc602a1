//! The one place that maps a configured source kind to its adapter.

use drydock_domain::config::SourceConfig;

use crate::DataSource;

pub fn build(config: &SourceConfig) -> Box<dyn DataSource> {
    match config {
        SourceConfig::Postgres(c) => Box::new(crate::postgres::Postgres::new(c.clone())),
        SourceConfig::Mysql(c) => Box::new(crate::mysql::Mysql::new(c.clone())),
        SourceConfig::Redis(c) => Box::new(crate::redis::Redis::new(c.clone())),
        SourceConfig::Sqlite(c) => Box::new(crate::sqlite::Sqlite::new(c.clone())),
        SourceConfig::Files(c) => Box::new(crate::files::Files::new(c.clone())),
        SourceConfig::Volume(c) => Box::new(crate::volume::Volume::new(c.clone())),
    }
}
