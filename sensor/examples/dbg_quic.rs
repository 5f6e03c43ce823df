fn main() {
    let path = std::env::args().nth(1).unwrap();
    let data = std::fs::read(path).unwrap();
    // classic pcap, ethernet or raw; find UDP payloads naively by scanning for IPv4/IPv6 UDP headers is hard; use offsets from args
    let off: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let len: usize = std::env::args().nth(3).unwrap().parse().unwrap();
    let p = &data[off..off + len];
    println!("{:?}", flowmesh_sensor::dissect::read_client_hello(p));
}
