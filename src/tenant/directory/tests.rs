use super::*;

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
const GLOBAL: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";

fn id(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

#[test]
fn csv_with_header_comments_quotes_and_spellings() {
    let text = format!(
        "id,region,name\n# the sample tenants\n{{{DE}}}, Germany,\"Contoso, DE\"\n{GLOBAL},global\n"
    );
    let entries = parse_file(&text, FileFormat::Csv).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].1, id(DE));
    assert_eq!(entries[0].2.region.as_str(), "germany");
    assert_eq!(entries[0].2.name.as_deref(), Some("Contoso, DE"));
    assert_eq!(entries[1].2.region.as_str(), "global");
    assert_eq!(entries[1].2.name, None);
}

#[test]
fn csv_reports_every_bad_line_with_its_number() {
    let text =
        format!("{DE},germany\n# comment\n\nnot-a-guid-0000,germany\n{GLOBAL}\n{GLOBAL},glo bal\n");
    let errors = parse_file(&text, FileFormat::Csv).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [4, 5, 6], "{errors:?}");
}

#[test]
fn json_lines() {
    let text = format!(
        "{{\"id\": \"{DE}\", \"region\": \"germany\", \"name\": \"Contoso DE\"}}\n\n{{\"id\": \"{GLOBAL}\", \"region\": \"global\"}}\n{{\"id\": 1}}\n"
    );
    let errors = parse_file(&text, FileFormat::JsonLines).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 4);
    let ok = text.lines().take(3).collect::<Vec<_>>().join("\n");
    let entries = parse_file(&ok, FileFormat::JsonLines).unwrap();
    assert_eq!(entries.len(), 2);
}

#[test]
fn host_wins_then_directory_then_default() {
    let mut entries = HashMap::new();
    entries.insert(
        id(DE),
        Entry {
            region: Region::new("germany"),
            name: None,
        },
    );
    let mut hosts = HashMap::new();
    hosts.insert("portal.example.de".to_string(), Region::new("germany"));
    let dir = Directory::new(entries, hosts, Region::new("global"));
    let (r, s) = dir.region(Some("portal.example.de"), Some(id(GLOBAL)));
    assert_eq!((r.as_str(), s), ("germany", RegionSource::Host));
    let (r, s) = dir.region(Some("portal.example.com"), Some(id(DE)));
    assert_eq!((r.as_str(), s), ("germany", RegionSource::Directory));
    let (r, s) = dir.region(Some("portal.example.com"), Some(id(GLOBAL)));
    assert_eq!((r.as_str(), s), ("global", RegionSource::Default));
    let (r, s) = dir.region(None, None);
    assert_eq!((r.as_str(), s), ("global", RegionSource::Default));
}

#[test]
fn file_format_by_extension() {
    assert_eq!(FileFormat::from_name("t.CSV"), Some(FileFormat::Csv));
    assert_eq!(
        FileFormat::from_name("t.jsonl"),
        Some(FileFormat::JsonLines)
    );
    assert_eq!(
        FileFormat::from_name("t.ndjson"),
        Some(FileFormat::JsonLines)
    );
    assert_eq!(FileFormat::from_name("t.txt"), None);
}
