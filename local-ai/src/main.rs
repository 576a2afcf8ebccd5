//! local-ai: the native stand-in for Workers AI. Not built yet: its own issue fills it in.
//! Until then it says so and exits, rather than pretend to embed anything.

fn main() {
    eprintln!("local-ai is not implemented yet; embeddings need Workers AI until it is");
    std::process::exit(2);
}
