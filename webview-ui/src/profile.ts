const root = document.getElementById('root')!;
root.textContent = 'The attribute profile is not available yet.';
