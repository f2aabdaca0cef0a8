//! The LMDB environment under concurrent readers: reused read transactions never hide a commit
//! that was reported, and map growth waits for readers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flume_view_index::Lmdb;

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Readers on other threads keep read transactions busy and idle; after every reported write,
/// a read on this thread and on a reader thread must see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reported_commit_is_visible_to_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let lmdb = Lmdb::open(dir.path()).unwrap();
    let table = lmdb.table("t").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<u64>();
    let (ask_tx, ask_rx) = std::sync::mpsc::channel::<u64>();
    let reader = {
        let (lmdb, stop) = (lmdb.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Busy reads in between keep idle transactions of older commits around.
                let _ = lmdb.read(|txn| table.len(txn));
                if let Ok(i) = ask_rx.try_recv() {
                    let found = lmdb.read(|txn| Ok(table.get(txn, &key(i))?.is_some()));
                    seen_tx.send(u64::from(found.unwrap())).unwrap();
                }
            }
        })
    };
    for i in 0..2_000u64 {
        lmdb.write(move |txn| table.put(txn, &key(i), b"v"))
            .await
            .unwrap();
        let here = lmdb.read(|txn| Ok(table.get(txn, &key(i))?.is_some()));
        assert!(here.unwrap(), "write {i} not visible on the writer's side");
        ask_tx.send(i).unwrap();
        assert_eq!(
            seen_rx.recv().unwrap(),
            1,
            "write {i} not visible to the reader"
        );
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
}

/// A 1 MiB map filled 20 times over while two threads read: every write lands, the map grows,
/// and no read fails. The reads touch the map (a value, not only the table's counts), so a
/// resize under a live read transaction would fault here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_grows_under_concurrent_readers() {
    let dir = tempfile::tempdir().unwrap();
    let lmdb = Lmdb::open_with_map(dir.path(), 1 << 20).unwrap();
    let table = lmdb.table("t").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (lmdb, stop) = (lmdb.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                // At least one read, however quickly the writes finish.
                loop {
                    let last = lmdb.read(|txn| Ok(table.last(txn)?.map(|(_, v)| v[0])));
                    assert!(matches!(last.unwrap(), None | Some(7)));
                    reads += 1;
                    if stop.load(Ordering::Relaxed) {
                        break reads;
                    }
                }
            })
        })
        .collect();
    let value = vec![7u8; 1000];
    let writes: Vec<_> = (0..20_000u64)
        .map(|i| {
            let (lmdb, value) = (lmdb.clone(), value.clone());
            tokio::spawn(
                async move { lmdb.write(move |txn| table.put(txn, &key(i), &value)).await },
            )
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(lmdb.read(|txn| table.len(txn)).unwrap(), 20_000);
    let size = lmdb.map_size();
    assert!(size >= 32 << 20, "the map did not grow: {size} bytes");
}
