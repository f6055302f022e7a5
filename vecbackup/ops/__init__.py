"""Operations: plain functions over a Source/Sink and a BlobStore, reporting through a Progress."""
