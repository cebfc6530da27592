//! Fixtures shared by the benchmarks (built before any timed loop).

use backflow::capture::file::{FrameBytes, Input, read_frames};
use backflow::capture::{Frame, LinkType};
use backflow::traffic::{GenOptions, Kind, generate};

/// A generated capture of `n` packets of `kind`: the pcap bytes and its
/// frames as read back.
pub fn generated(kind: Kind, n: u64) -> (Vec<u8>, Vec<(LinkType, Vec<u8>)>) {
    let mut buf = Vec::new();
    generate(
        &mut buf,
        &GenOptions {
            kind,
            packets: n,
            concurrent: 1000,
            seed: 1,
        },
    )
    .expect("generate");
    let mut out = Vec::new();
    let input = Input::from_reader(
        std::path::Path::new("gen"),
        Box::new(std::io::Cursor::new(buf.clone())),
    );
    let (_, err) = read_frames(
        input,
        &mut |f: &Frame<'_>, _: FrameBytes<'_>| out.push((f.linktype, f.data.to_vec())),
        &Default::default(),
    );
    assert!(err.is_none());
    (buf, out)
}
