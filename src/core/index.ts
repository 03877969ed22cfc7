export * from './attributes';
export * from './prompt';
export * from './ports';
export * from './selection';
export * from './memory';
export * from './profile';
export * from './exploration';
export * from './abstention';
