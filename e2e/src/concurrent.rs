//! Enqueueing from a few threads at once, as several clients would: the items split into one
//! run per thread, each run in order, the results in the items' order.

/// `one` applied to every item of `items`, from `threads` threads at once (each taking the next
/// run of items in turn); the first error, or every result in the items' order.
pub fn in_threads<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    one: impl Fn(&T) -> Result<R, String> + Sync,
) -> Result<Vec<R>, String> {
    let one = &one;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || chunk.iter().map(one).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut results = Vec::with_capacity(items.len());
        for handle in handles {
            results.extend(
                handle
                    .join()
                    .map_err(|_| "an enqueuing thread panicked".to_owned())??,
            );
        }
        Ok(results)
    })
}
