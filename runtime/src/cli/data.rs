//! `hyperagent data`: which data files each domain can read, whether they are here, their blake3
//! and where they come from.

use super::terminal::outln;
use std::path::Path;

pub fn list(data_dir: &Path) {
    outln!("data directory: {}", data_dir.display());
    for name in hyperagent::domains::names() {
        let services = hyperagent::domains::HostServices::none();
        let domain = match hyperagent::domains::open(name, &serde_json::Value::Null, data_dir, &services) {
            Ok(domain) => domain,
            Err(e) => {
                outln!("{name}: {e}");
                continue;
            }
        };
        let files = domain.data_files();
        if files.is_empty() {
            outln!("{name}: reads no data files");
            continue;
        }
        let present = files.iter().filter(|f| data_dir.join(f.path).exists()).count();
        outln!("{name}: {present} of {} data files present", files.len());
        for file in files {
            let path = data_dir.join(file.path);
            let state = match hyperagent::fsutil::digest_path(&path) {
                Ok(digest) => format!("blake3 {digest}"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing".to_owned(),
                Err(e) => format!("unreadable: {e}"),
            };
            outln!("  {}  {state}", file.path);
            outln!("      from {}", file.source);
        }
        if present < domain.data_files().len() {
            outln!("  without them, runs use generated stand-ins, named \"(generated)\" in the tables");
        }
    }
}
