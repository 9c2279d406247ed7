use super::*;

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
const GLOBAL: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";

fn id(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// Every tenant a file's text lists (id, region), or the numbers of its
/// bad lines.
fn parse(text: &str, format: FileFormat) -> Result<Vec<(TenantId, String)>, Vec<usize>> {
    let mut p = LineParser::new(format);
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        match p.line(line) {
            Ok(Some(l)) => ok.push((l.id, l.region.into_owned())),
            Ok(None) => {}
            Err(_) => bad.push(i + 1),
        }
    }
    if bad.is_empty() {
        Ok(ok)
    } else {
        Err(bad)
    }
}

#[test]
fn csv_with_header_comments_quotes_and_spellings() {
    let text = format!(
        "id,region,name\n# the sample tenants\n{{{DE}}}, Germany,\"Contoso, DE\"\n{GLOBAL},global\n\
         \"{GLOBAL}\",\"global\"\n {DE} , germany , Contoso\n"
    );
    let entries = parse(&text, FileFormat::Csv).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0], (id(DE), "Germany".to_string()));
    assert_eq!(entries[1], (id(GLOBAL), "global".to_string()));
    assert_eq!(entries[2], (id(GLOBAL), "global".to_string()));
    assert_eq!(entries[3], (id(DE), "germany".to_string()));
}

#[test]
fn csv_reports_every_bad_line_with_its_number() {
    let text = format!(
        "{DE},germany\n# comment\n\nnot-a-guid-0000,germany\n{GLOBAL}\n{GLOBAL},glo bal\n\
         {DE},germany,name,extra\n\"{DE},germany\n{DE},\n"
    );
    assert_eq!(parse(&text, FileFormat::Csv), Err(vec![4, 5, 6, 7, 8, 9]));
    // A header is only the first line that is not blank or a comment.
    assert_eq!(
        parse(&format!("{DE},germany\nid,region\n"), FileFormat::Csv),
        Err(vec![2])
    );
}

#[test]
fn json_lines() {
    let text = format!(
        "{{\"id\": \"{DE}\", \"region\": \"germany\", \"name\": \"Contoso DE\"}}\n\n{{\"id\": \"{GLOBAL}\", \"region\": \"global\"}}\n{{\"id\": 1}}\n{{\"id\": \"{DE}\", \"region\": \"x y\"}}\n"
    );
    assert_eq!(parse(&text, FileFormat::JsonLines), Err(vec![4, 5]));
    let ok = text.lines().take(3).collect::<Vec<_>>().join("\n");
    assert_eq!(parse(&ok, FileFormat::JsonLines).unwrap().len(), 2);
}

#[test]
fn a_large_directory_finds_every_tenant_and_no_other() {
    // Ids spread like GUIDs (a simple mixing of the index), in many buckets.
    let mix = |i: u64| {
        let a = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i >> 7);
        let b = a.rotate_left(29).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        TenantId::from_u128(u128::from(a) << 64 | u128::from(b))
    };
    let mut b = Builder::default();
    let de = b.region("germany");
    let global = b.region("GLOBAL");
    assert_eq!(b.region(" Global "), global);
    for i in 0..50_000u64 {
        b.add(mix(i), if i % 10 == 0 { de } else { global });
    }
    // The demo's ids share their top bits: one bucket holds them all.
    for i in 0..100u128 {
        b.add(
            TenantId::from_u128(0x0a1b_2c3d_0000_4000_8000_0000_0000_0000 | i),
            de,
        );
    }
    let (d, conflicts) = b.build(HashMap::new(), Region::new("global"));
    assert!(conflicts.is_empty());
    assert_eq!(d.len(), 50_100);
    for i in 0..50_000u64 {
        let want = if i % 10 == 0 { "germany" } else { "global" };
        assert_eq!(d.tenant_region(mix(i)).map(Region::as_str), Some(want));
    }
    for i in 0..100u128 {
        let t = TenantId::from_u128(0x0a1b_2c3d_0000_4000_8000_0000_0000_0000 | i);
        assert_eq!(d.tenant_region(t).map(Region::as_str), Some("germany"));
    }
    for i in 50_000..60_000u64 {
        assert_eq!(d.tenant_region(mix(i)), None);
    }
    // (mix(0) is the id 0, listed above.)
    assert_eq!(d.tenant_region(TenantId::from_u128(u128::MAX)), None);
    // 16 bytes a tenant and the buckets.
    assert!(
        d.heap_bytes() <= 50_100 * 16 + 2 * ((1 << 13) + 1) * 4,
        "{}",
        d.heap_bytes()
    );
}

#[test]
fn a_tenant_listed_again_in_its_region_is_fine_in_another_a_conflict() {
    let mut b = Builder::default();
    let de = b.region("germany");
    let global = b.region("global");
    b.add(id(DE), de);
    b.add(id(DE), de);
    b.add(id(GLOBAL), global);
    let (d, conflicts) = b.build(HashMap::new(), Region::new("global"));
    assert!(conflicts.is_empty());
    assert_eq!(d.len(), 2);
    let mut b = Builder::default();
    let de = b.region("germany");
    let global = b.region("global");
    let other = b.region("other");
    b.add(id(DE), de);
    b.add(id(DE), global);
    b.add(id(DE), other);
    b.add(id(GLOBAL), global);
    let (_, conflicts) = b.build(HashMap::new(), Region::new("global"));
    assert_eq!(conflicts, [id(DE)]);
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
