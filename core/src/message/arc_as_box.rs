//! An rkyv wrapper that archives an `Arc<T>` exactly as a `Box<T>`.
//!
//! [`Event::Create`](super::Event::Create) holds its envelope in an `Arc`
//! so the store keeps the very allocation the request arrived in (no copy
//! of a ~370-byte envelope, no second allocation per message). The log's
//! format predates that and archives the envelope as a `Box`; this wrapper
//! keeps every byte of it the same (`format_tests` pins them), and reading
//! builds a fresh `Arc`, never a shared one (nothing in an archive is
//! shared).

use std::sync::Arc;

use rkyv::boxed::{ArchivedBox, BoxResolver};
use rkyv::rancor::Fallible;
use rkyv::with::{ArchiveWith, DeserializeWith, SerializeWith};
use rkyv::{Archive, Deserialize, Place, Serialize};

/// `#[rkyv(with = ArcAsBox)]` on an `Arc<T>` field.
#[derive(Debug)]
pub struct ArcAsBox;

impl<T: Archive> ArchiveWith<Arc<T>> for ArcAsBox {
    type Archived = ArchivedBox<T::Archived>;
    type Resolver = BoxResolver;

    fn resolve_with(field: &Arc<T>, resolver: BoxResolver, out: Place<Self::Archived>) {
        ArchivedBox::resolve_from_ref(field.as_ref(), resolver, out);
    }
}

impl<T, S> SerializeWith<Arc<T>, S> for ArcAsBox
where
    T: Serialize<S>,
    S: Fallible + rkyv::ser::Writer + ?Sized,
{
    fn serialize_with(field: &Arc<T>, serializer: &mut S) -> Result<BoxResolver, S::Error> {
        ArchivedBox::serialize_from_ref(field.as_ref(), serializer)
    }
}

impl<T, D> DeserializeWith<ArchivedBox<T::Archived>, Arc<T>, D> for ArcAsBox
where
    T: Archive,
    T::Archived: Deserialize<T, D>,
    D: Fallible + ?Sized,
{
    fn deserialize_with(field: &ArchivedBox<T::Archived>, d: &mut D) -> Result<Arc<T>, D::Error> {
        Ok(Arc::new(field.get().deserialize(d)?))
    }
}
