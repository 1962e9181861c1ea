//! Unit tests of [`render`](super).

use super::{names_bucket_size, union_protocols};

#[test]
fn the_default_server_offers_every_version_a_site_allows() {
    assert_eq!(union_protocols([].into_iter()), "TLSv1.2 TLSv1.3");
    assert_eq!(union_protocols(["TLSv1.3"].into_iter()), "TLSv1.3");
    assert_eq!(
        union_protocols(["TLSv1.3", "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"].into_iter()),
        "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"
    );
}

#[test]
fn the_bucket_grows_only_for_names_nginx_64_cannot_hold() {
    assert_eq!(
        names_bucket_size(46),
        None,
        "46 + 2 + two pointers fit in 64"
    );
    assert_eq!(names_bucket_size(47), Some(128));
    assert_eq!(names_bucket_size(253), Some(512));
}
